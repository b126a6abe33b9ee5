using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// Why a step ran (docs/architecture.md, "Why a step ran"), as a user of the local farm meets it: the line under a step
/// in <c>--progress plain</c>, the <c>explanation</c> of rawjson's <c>StepStarted</c>, and <c>farm explain</c>, for
/// each kind of change between two builds of the same Dockerfile and tag.
/// </summary>
public sealed class ExplainTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    // s0/2 is the COPY, s0/3 the RUN. The RUN never prints the build arg's value, so nothing but the farm's own records
    // could carry it.
    private const string Dockerfile = """
        FROM farm-test-busybox:1
        ARG VERSION=1
        COPY src/ /app/
        RUN test -n "$VERSION" && ls /app > /listing
        """;

    private (string Context, string Tag) App()
    {
        var context = fixture.Context(
            ("Dockerfile", Dockerfile),
            ("src/app.py", $"print('app {Guid.NewGuid():N}')\n"),
            ("src/old.py", "print('old')\n"),
            ("src/lib/util.py", "pass\n"));
        return (context, $"explain-{Guid.NewGuid():N}:1");
    }

    [Fact]
    public async Task Each_kind_of_change_is_explained_under_its_step_and_in_farm_explain()
    {
        var (context, tag) = App();

        // A first build: nothing to compare with.
        var first = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", tag, context));
        Assert.Equal("never-built", Kind(Started(first.Stdout, "s0/2")));
        Assert.Equal("never-built", Kind(Started(first.Stdout, "s0/3")));
        var firstId = (string)Started(first.Stdout, "s0/2")["buildId"]!;

        // Nothing changed: every step cached, nothing to explain.
        var same = Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));
        Assert.DoesNotContain("rebuilt:", same.Stderr, StringComparison.Ordinal);

        // A file edited.
        File.AppendAllText(Path.Combine(context, "src", "app.py"), "print('edited')\n");
        var edited = Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));
        Assert.Matches(UnderStep("COPY src/ /app/", "COPY source src/app.py changed"), edited.Stderr);
        Assert.Matches(UnderStep("RUN test -n \"$VERSION\"", "the layer below changed: s0/2 (COPY) ran again"), edited.Stderr);

        // A file added.
        File.WriteAllText(Path.Combine(context, "src", "lib", "new.py"), "pass\n");
        var added = Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));
        Assert.Matches(UnderStep("COPY src/ /app/", "COPY source src/lib/new.py added"), added.Stderr);

        // A file removed.
        File.Delete(Path.Combine(context, "src", "old.py"));
        var removed = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", tag, context));
        var copy = Started(removed.Stdout, "s0/2");
        Assert.Equal("COPY source src/old.py removed", (string?)copy["explanation"]!["summary"]);
        var files = copy["explanation"]!["reasons"]!.AsArray().Single(r => (string?)r!["kind"] == "files")!;
        Assert.Equal(["src/old.py"], files["removed"]!.AsArray().Select(p => (string?)p));
        Assert.Equal(1, (int)files["removedCount"]!);
        Assert.NotEqual(firstId, (string?)copy["explanation"]!["previousBuild"]);

        // A build arg changed: its name is said, its value never.
        var secret = "v-" + Guid.NewGuid().ToString("N");
        var arg = Ok(await fixture.Farm("build", "--progress", "rawjson", "--build-arg", $"VERSION={secret}", "-t", tag, context));
        Assert.True((bool)Finished(arg.Stdout, "s0/2")["outcome"]!["cached"]!, "the COPY does not use the build arg");
        var run = Started(arg.Stdout, "s0/3")["explanation"]!;
        Assert.Equal("build arg VERSION changed", (string?)run["summary"]);
        Assert.Equal(["VERSION"], run["reasons"]!.AsArray().Single(r => (string?)r!["kind"] == "args")!["names"]!.AsArray().Select(n => (string?)n));
        var argId = (string)Started(arg.Stdout, "s0/3")["buildId"]!;

        // --no-cache: every step runs, and says so.
        var noCache = Ok(await fixture.Farm("build", "--progress", "plain", "--no-cache", "--build-arg", $"VERSION={secret}", "-t", tag, context));
        Assert.Equal(2, Regex.Count(noCache.Stderr, @"^#\d+ rebuilt: --no-cache: every step runs$", RegexOptions.Multiline));

        // farm explain: the arg build in full, one step of it, and a step it does not have.
        var full = Ok(await fixture.Farm("explain", argId)).Stdout;
        Assert.Contains($"build {argId}: compared with build ", full, StringComparison.Ordinal);
        Assert.Contains("s0/2 COPY src/ /app/\n  CACHED\n", full, StringComparison.Ordinal);
        Assert.Contains("s0/3 RUN test -n \"$VERSION\" && ls /app > /listing\n  rebuilt: build arg VERSION changed\n  - args: build arg VERSION changed\n      names: VERSION\n", full, StringComparison.Ordinal);
        var removedId = (string)copy["buildId"]!;
        var one = Ok(await fixture.Farm("explain", removedId, "s0/2")).Stdout;
        Assert.Equal("s0/2 COPY src/ /app/\n  rebuilt: COPY source src/old.py removed\n  - files: COPY source src/old.py removed\n      removed (1):\n        src/old.py\n", one);
        var none = await fixture.Farm("explain", argId, "s0/2");
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("farm: FARM5080: ", none.Stderr, StringComparison.Ordinal);
        Assert.Contains("the steps that ran are s0/3", none.Stderr, StringComparison.Ordinal);
        var last = Ok(await fixture.Farm("explain", "last")).Stdout;
        Assert.Contains("rebuilt: --no-cache: every step runs", last, StringComparison.Ordinal);

        // The value is in no event of any of these builds, nor anywhere in the farm's state (lineage records, logs).
        foreach (var output in new[] { arg.Stdout, arg.Stderr, noCache.Stderr, full })
        {
            Assert.DoesNotContain(secret, output, StringComparison.Ordinal);
        }

        foreach (var path in Directory.EnumerateFiles(Path.Combine(fixture.Directory, "state"), "*", SearchOption.AllDirectories).Where(p => !p.Contains("/images/", StringComparison.Ordinal) && !p.Contains("/worker/", StringComparison.Ordinal) && !p.EndsWith(".sock", StringComparison.Ordinal) && !p.EndsWith(".lock", StringComparison.Ordinal)))
        {
            Assert.DoesNotContain(secret, File.ReadAllText(path), StringComparison.Ordinal);
        }

        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(fixture.Directory, "state", "lineage"), "*.json"));
    }

    [Fact]
    public async Task A_base_image_update_is_explained_on_the_first_step_with_both_digests()
    {
        var (context, tag) = App();
        var baseName = $"explain-base-{Guid.NewGuid():N}:1";
        File.WriteAllText(Path.Combine(context, "Dockerfile"), Dockerfile.Replace(BuildFixture.Base, baseName, StringComparison.Ordinal));
        Ok(await fixture.Farm("import", "-c", "CMD [\"sh\"]", BuildFixture.BusyboxRootfs(fixture.Directory), baseName));
        var first = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", tag, context));
        var before = (string)first.Stdout.Split('\n').Select(l => JsonNode.Parse(l)!).First(e => (string?)e["type"] == "BaseImageResolved")["digest"]!;

        // The same name, another image (its config differs): the build pins the new digest.
        Ok(await fixture.Farm("import", "-c", "CMD [\"sh\", \"-c\", \"true\"]", BuildFixture.BusyboxRootfs(fixture.Directory), baseName));
        var updated = Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));
        var after = Regex.Match(updated.Stderr, @"load metadata for .*\n#\d+ DONE (sha256:[0-9a-f]{64})").Groups[1].Value;
        Assert.NotEqual(before, after);
        Assert.Matches(UnderStep("COPY src/ /app/", $"base image {baseName} updated ({before[..19]} -> {after[..19]})"), updated.Stderr);
        Assert.Matches(UnderStep("RUN test -n \"$VERSION\"", "the layer below changed: s0/2 (COPY) ran again"), updated.Stderr);
    }

    [Fact]
    public async Task Another_Dockerfile_or_tag_is_another_lineage_and_a_step_inserted_above_is_matched_by_its_text()
    {
        var (context, tag) = App();
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));

        // An instruction inserted above the COPY shifts its id (s0/2 -> s0/3); it is still compared with the COPY.
        File.WriteAllText(Path.Combine(context, "Dockerfile"), Dockerfile.Replace("COPY src/", "RUN mkdir -p /app/extra\nCOPY src/", StringComparison.Ordinal));
        var inserted = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", tag, context));
        Assert.Equal("new-step", Kind(Started(inserted.Stdout, "s0/2")));
        var moved = Started(inserted.Stdout, "s0/3")["explanation"]!;
        Assert.Equal("s0/2", (string?)moved["previousStep"]);
        Assert.Equal("the layer below changed: s0/2 (RUN) ran again", (string?)moved["summary"]);

        // Another tag in another context directory: never built, although the Dockerfile is the same.
        var (other, otherTag) = App();
        var fresh = Ok(await fixture.Farm("build", "--progress", "plain", "-t", otherTag, other));
        Assert.Matches(UnderStep("COPY src/ /app/", "never built: no earlier build of this Dockerfile and target"), fresh.Stderr);
    }

    [Fact]
    public async Task Dry_run_says_which_steps_would_run_and_why_and_builds_pushes_and_names_nothing()
    {
        var (context, tag) = App();
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));
        File.AppendAllText(Path.Combine(context, "src", "app.py"), "print('dry')\n");
        var entries = CacheEntries();
        var dryTag = $"explain-dry-{Guid.NewGuid():N}:1";

        var dry = Ok(await fixture.Farm("build", "--dry-run", "--progress", "plain", "-t", tag, "-t", dryTag, context));

        Assert.Matches(new Regex(@"^#1 \[[^\]]+\] COPY src/ /app/\n#1 would run: COPY source src/app.py changed$", RegexOptions.Multiline), dry.Stdout);
        Assert.Matches(new Regex(@"^#2 \[[^\]]+\] RUN test -n .*\n#2 would run: the layer below changed: s0/2 \(COPY\) ran again$", RegexOptions.Multiline), dry.Stdout);
        Assert.Matches(new Regex(@"^dry run: 2 of 2 layer steps would run \(compared with build [0-9a-f-]{36}\); nothing was built, pushed or named$", RegexOptions.Multiline), dry.Stdout);
        Assert.Equal(entries, CacheEntries());
        Assert.DoesNotContain(dryTag.Split(':')[0], Ok(await fixture.Farm("images")).Stdout, StringComparison.Ordinal);

        // Nothing was recorded either: the build that follows compares with the same build the dry run did, runs both
        // steps, and a dry run after it finds everything cached.
        var built = Ok(await fixture.Farm("build", "--progress", "plain", "-t", tag, context));
        Assert.Matches(UnderStep("COPY src/ /app/", "COPY source src/app.py changed"), built.Stderr);
        var cached = Ok(await fixture.Farm("build", "--dry-run", "--progress", "rawjson", "-t", tag, context));
        var plan = JsonNode.Parse(cached.Stdout)!;
        Assert.All(plan["steps"]!.AsArray(), s => Assert.True((bool)s!["cached"]!));
        Assert.Equal(2, plan["steps"]!.AsArray().Count);
    }

    /// <summary>The action cache entries of the local farm, by name.</summary>
    private List<string> CacheEntries()
    {
        var root = Path.Combine(fixture.Directory, "state", "action-cache");
        return Directory.Exists(root) ? [.. Directory.EnumerateFiles(root, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal)] : [];
    }

    private static JsonNode Started(string rawjson, string stepId) =>
        Events(rawjson).Last(e => (string?)e["type"] == "StepStarted" && (string?)e["stepId"] == stepId);

    private static JsonNode Finished(string rawjson, string stepId) =>
        Events(rawjson).Last(e => (string?)e["type"] == "StepFinished" && (string?)e["outcome"]!["stepId"] == stepId);

    private static string? Kind(JsonNode started) => (string?)started["explanation"]!["reasons"]![0]!["kind"];

    /// <summary>The step's numbered line, then at once <c>#N rebuilt: WHY</c> with the same number.</summary>
    private static Regex UnderStep(string instruction, string why) =>
        new($@"^#(\d+) \[[^\]]+\] {Regex.Escape(instruction)}.*\n#\1 rebuilt: {Regex.Escape(why)}$", RegexOptions.Multiline);

    private static List<JsonNode> Events(string stdout) =>
        [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!)];

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}
