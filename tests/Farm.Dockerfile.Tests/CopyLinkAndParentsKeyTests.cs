using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Planning;

namespace Farm.Dockerfile.Tests;

/// <summary>
/// Cache keys of <c>COPY --parents</c> and <c>COPY --link</c> (docs/architecture.md, "Cache keys"): the flags are
/// inputs, and a <c>--link</c> layer, made on an empty root, stays cached when what lies below it changes while the
/// steps after it do not.
/// </summary>
public sealed class CopyLinkAndParentsKeyTests
{
    private const string BaseA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string BaseB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    private static ContextIndex Index(string appSha = "1111111111111111111111111111111111111111111111111111111111111111") => new(
    [
        new ContextEntry("a", ContextEntryType.Directory, 493, 0, null, null),
        new ContextEntry("a/b", ContextEntryType.Directory, 493, 0, null, null),
        new ContextEntry("a/b/c.txt", ContextEntryType.File, 420, 10, appSha, null),
        new ContextEntry("run.sh", ContextEntryType.File, 493, 10, "2222222222222222222222222222222222222222222222222222222222222222", null),
    ]);

    private static CacheKeyPlan Plan(string dockerfile, string baseDigest = BaseA, ContextIndex? index = null) =>
        CacheKeyPlanner.Compute(BuildGraph.Create(dockerfile, "Dockerfile", new BuildGraphOptions()), index ?? Index(), _ => baseDigest);

    [Fact]
    public void Parents_is_part_of_the_key()
    {
        var plain = Plan("FROM base\nCOPY a/b/c.txt /dst/\n");
        var parents = Plan("FROM base\nCOPY --parents a/b/c.txt /dst/\n");
        var pivot = Plan("FROM base\nCOPY --parents ./a/./b/c.txt /dst/\n");

        Assert.NotEqual(plain.Steps[0].Key, parents.Steps[0].Key);
        Assert.NotEqual(parents.Steps[0].Key, pivot.Steps[0].Key);
        Assert.True(parents.Steps[0].Cacheable);
    }

    [Fact]
    public void A_link_step_keeps_its_key_when_the_base_or_an_earlier_step_changes_and_the_steps_after_it_do_not()
    {
        const string dockerfile = "FROM base\nCOPY run.sh /bin/\nRUN echo {0}\nCOPY --link a/b/c.txt /app/\nRUN cat /app/c.txt\n";
        var before = Plan(string.Format(System.Globalization.CultureInfo.InvariantCulture, dockerfile, "one"));
        var newBase = Plan(string.Format(System.Globalization.CultureInfo.InvariantCulture, dockerfile, "one"), BaseB);
        var newRun = Plan(string.Format(System.Globalization.CultureInfo.InvariantCulture, dockerfile, "two"));

        foreach (var changed in new[] { newBase, newRun })
        {
            Assert.Equal(before.Steps[2].Key, changed.Steps[2].Key);
            Assert.NotEqual(before.Steps[3].Key, changed.Steps[3].Key);
            Assert.NotEqual(before.Stages[0].FinalKey, changed.Stages[0].FinalKey);
        }

        Assert.NotEqual(before.Steps[1].Key, newRun.Steps[1].Key);
        Assert.Equal("link:empty-root", before.Steps[2].ParentKey);
    }

    [Fact]
    public void A_link_step_still_follows_its_sources_destination_and_flags()
    {
        var link = Plan("FROM base\nCOPY --link a/b/c.txt /app/\n").Steps[0].Key;

        Assert.NotEqual(link, Plan("FROM base\nCOPY a/b/c.txt /app/\n").Steps[0].Key);
        Assert.NotEqual(link, Plan("FROM base\nCOPY --link a/b/c.txt /app/\n", index: Index(new string('9', 64))).Steps[0].Key);
        Assert.NotEqual(link, Plan("FROM base\nCOPY --link a/b/c.txt /srv/\n").Steps[0].Key);
        Assert.NotEqual(link, Plan("FROM base\nCOPY --link --chmod=600 a/b/c.txt /app/\n").Steps[0].Key);
        Assert.NotEqual(link, Plan("FROM base\nCOPY --link --chown=1:1 a/b/c.txt /app/\n").Steps[0].Key);
        Assert.NotEqual(link, Plan("FROM base\nWORKDIR /w\nCOPY --link a/b/c.txt app/\n").Steps[1].Key);
        Assert.Equal(link, Plan("FROM base\nRUN true\nCOPY --link a/b/c.txt /app/\n", BaseB).Steps[1].Key);
    }
}
