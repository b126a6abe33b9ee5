using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Planning;

namespace Farm.Dockerfile.Tests;

/// <summary>How ADD reads a git source, and how its key follows the commit its ref names.</summary>
public sealed class GitSourceTests
{
    [Theory]
    [InlineData("https://host/org/repo.git", true)]
    [InlineData("https://host/org/repo.git#v1:sub", true)]
    [InlineData("git://host/repo", true)]
    [InlineData("git@host:org/repo", true)]
    [InlineData("ssh://git@host/repo.git", true)]
    [InlineData("https://host/file.tar.gz", false)]
    [InlineData("https://host/repo.git.tar", false)]
    [InlineData("src/repo.git", false)]
    public void ADD_takes_BuildKits_git_forms_as_repositories(string source, bool git) => Assert.Equal(git, GitSource.IsGit(source));

    [Fact]
    public void The_fragment_names_the_ref_and_the_subdirectory()
    {
        Assert.Equal(new GitSource("https://host/r.git", "v1", "svc/api"), GitSource.Parse("https://host/r.git#v1:svc/api/"));
        Assert.Equal(new GitSource("https://host/r.git", null, "svc"), GitSource.Parse("https://host/r.git#:svc"));
        Assert.Equal(new GitSource("git://host/r", null, null), GitSource.Parse("git://host/r"));
        Assert.True(GitSource.IsCommit(new string('a', 40)));
        Assert.False(GitSource.IsCommit("abc1234"));
    }

    [Fact]
    public void Credentials_in_a_url_never_reach_a_message()
    {
        Assert.Equal(
            "fatal: unable to access 'https://***@host/r.git/': 403",
            GitSource.Redact("fatal: unable to access 'https://user:s3cret-token@host/r.git/': 403"));
        Assert.Equal("https://host/r.git#main", GitSource.Redact("https://host/r.git#main"));
    }

    [Fact]
    public void The_key_is_of_the_commit_and_without_one_the_step_is_not_cached()
    {
        const string df = "FROM scratch\nADD https://host/r.git#main /src\n";
        var graph = BuildGraph.Create(df);
        CacheKeyPlan Plan(string? commit) => CacheKeyPlanner.Compute(
            graph,
            null,
            _ => throw new InvalidOperationException("scratch needs no image"),
            new CacheKeyOptions { GitCommits = commit is null ? null : new Dictionary<string, string> { ["https://host/r.git#main"] = commit } });

        var unresolved = Plan(null).Steps.Single();
        Assert.False(unresolved.Cacheable);
        var one = Plan(new string('1', 40)).Steps.Single();
        var two = Plan(new string('2', 40)).Steps.Single();
        Assert.True(one.Cacheable);
        Assert.Equal(one.Key, Plan(new string('1', 40)).Steps.Single().Key);
        Assert.NotEqual(one.Key, two.Key);
    }
}
