using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Planning;

namespace Farm.Dockerfile.Tests;

/// <summary>
/// <see cref="KeyInputsDiff"/> over key inputs the planner records (docs/architecture.md, "Why a step ran"): what a
/// user reads under a step that ran, for changes the end-to-end tests do not make.
/// </summary>
public sealed class KeyInputsDiffTests
{
    private static readonly KeyInputDigester Digester = new([.. Enumerable.Range(1, 32).Select(i => (byte)i)]);

    private static IReadOnlyList<StepKeyInputs> Plan(string dockerfile, IEnumerable<(string Path, string Sha)> files, Dictionary<string, string>? args = null, int maxFilesPerStep = 2000)
    {
        var graph = BuildGraph.Create(dockerfile, "Dockerfile", new BuildGraphOptions { BuildArgs = args ?? [] });
        var index = new ContextIndex([new ContextEntry("src", ContextEntryType.Directory, 493, 0, null, null), .. files.Select(f => new ContextEntry(f.Path, ContextEntryType.File, 420, 10, f.Sha, null))]);
        var plan = CacheKeyPlanner.Compute(graph, index, _ => "sha256:" + new string('a', 64), null, new KeyInputsOptions { Digester = Digester, BuildArgs = args ?? [], MaxFilesPerStep = maxFilesPerStep });
        return [.. plan.Steps.Select(s => s.Inputs!)];
    }

    private static StepExplanation Explain(IReadOnlyList<StepKeyInputs> before, IReadOnlyList<StepKeyInputs> now, int step) =>
        KeyInputsDiff.Explain(now[step], now, new BuildKeyInputs { BuildId = Guid.NewGuid(), Steps = before }, noCache: false, notCacheable: null);

    private static IEnumerable<(string, string)> Files(int count, int changedFrom = int.MaxValue) =>
        Enumerable.Range(0, count).Select(i => ($"src/f{i:D4}.txt", (i >= changedFrom ? "b" : "a") + new string('0', 63)));

    [Fact]
    public void Many_changed_files_list_twenty_paths_and_count_them_all()
    {
        const string dockerfile = "FROM base\nCOPY src/ /app/\n";
        var why = Explain(Plan(dockerfile, Files(100)), Plan(dockerfile, Files(100, changedFrom: 40)), 0);

        var files = Assert.Single(why.Reasons);
        Assert.Equal("files", files.Kind);
        Assert.Equal(60, files.ChangedCount);
        Assert.Equal(KeyInputsDiff.PathsShown, files.Changed.Count);
        Assert.Equal("src/f0040.txt", files.Changed[0]);
        Assert.Equal("COPY sources: 60 changed (src/f0040.txt, src/f0041.txt, src/f0042.txt, ...)", why.Summary);
    }

    [Fact]
    public void A_change_beyond_the_files_recorded_by_path_is_still_seen()
    {
        const string dockerfile = "FROM base\nCOPY src/ /app/\n";
        var why = Explain(Plan(dockerfile, Files(50), maxFilesPerStep: 10), Plan(dockerfile, Files(50, changedFrom: 45), maxFilesPerStep: 10), 0);

        // 51 paths: the directory and its 50 files.
        Assert.Equal("COPY sources changed among 51 paths (beyond the 10 recorded one by one)", why.Summary);
    }

    [Fact]
    public void An_environment_change_names_the_variable_and_a_user_change_the_setting_never_a_value()
    {
        var before = Plan("FROM base\nENV MODE=debug\nUSER app\nRUN make\n", []);
        var now = Plan("FROM base\nENV MODE=release-7f3a\nUSER root\nRUN make\n", []);
        var why = Explain(before, now, 0);

        Assert.Equal("environment variable MODE changed; USER changed", why.Summary);
        Assert.Equal(["MODE"], why.Reasons.Single(r => r.Kind == "env").Names);
        Assert.DoesNotContain("release-7f3a", System.Text.Json.JsonSerializer.Serialize(now) + System.Text.Json.JsonSerializer.Serialize(why), StringComparison.Ordinal);
    }

    [Fact]
    public void Unchanged_inputs_that_missed_say_the_cache_entry_is_gone()
    {
        const string dockerfile = "FROM base\nRUN make\n";
        var why = Explain(Plan(dockerfile, []), Plan(dockerfile, []), 0);

        Assert.Equal("cache-entry-gone", Assert.Single(why.Reasons).Kind);
    }

    [Fact]
    public void Value_digests_depend_on_the_farms_key()
    {
        var other = new KeyInputDigester([.. Enumerable.Range(100, 32).Select(i => (byte)i)]);

        Assert.Equal(Digester.Value("VERSION", "1"), Digester.Value("VERSION", "1"));
        Assert.NotEqual(Digester.Value("VERSION", "1"), other.Value("VERSION", "1"));
        Assert.NotEqual(Digester.Value("VERSION", "1"), Digester.Value("VERSION", "2"));
        Assert.NotEqual(Digester.Value("VERSION", null), Digester.Value("VERSION", string.Empty));
    }
}
