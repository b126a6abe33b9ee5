using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>COPY --parents</c> and <c>COPY --link</c> through <c>farm build</c> on the embedded farm, the result read from the
/// exported root filesystem (<c>--output type=local</c>).
/// </summary>
public sealed class CopyParentsAndLinkTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    [Fact]
    public async Task Copy_parents_keeps_the_source_paths_below_the_destination_from_a_dot_pivot_on()
    {
        var context = fixture.Context(
            ("Dockerfile", """
                FROM farm-test-busybox:1
                COPY --parents ./a/b/c.txt /one/
                COPY --parents a/*/*.txt /two/
                COPY --parents ./x/./y/z.txt /three/
                WORKDIR /w
                COPY --parents dir rel/
                COPY a/b/c.txt /flat/
                """),
            ("a/b/c.txt", "c"),
            ("a/d/e.txt", "e"),
            ("x/y/z.txt", "z"),
            ("dir/sub/f.txt", "f"));
        var rootfs = Path.Combine(fixture.Directory, "rootfs-" + Guid.NewGuid().ToString("N")[..8]);

        Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=local,dest={rootfs}", context));

        Assert.Equal("c", File.ReadAllText(Path.Combine(rootfs, "one/a/b/c.txt")));
        Assert.Equal("c", File.ReadAllText(Path.Combine(rootfs, "two/a/b/c.txt")));
        Assert.Equal("e", File.ReadAllText(Path.Combine(rootfs, "two/a/d/e.txt")));
        Assert.Equal("z", File.ReadAllText(Path.Combine(rootfs, "three/y/z.txt")));
        Assert.False(Directory.Exists(Path.Combine(rootfs, "three/x")));
        Assert.Equal("f", File.ReadAllText(Path.Combine(rootfs, "w/rel/dir/sub/f.txt")));
        Assert.Equal("c", File.ReadAllText(Path.Combine(rootfs, "flat/c.txt")));
    }

    [Fact]
    public async Task A_copy_link_step_stays_cached_when_an_earlier_step_changes_and_the_image_has_the_files_of_both()
    {
        const string dockerfile = """
            FROM farm-test-busybox:1
            RUN echo {0} > /below.txt
            COPY --link app.txt /opt/app/
            WORKDIR /w
            COPY --link rel.txt sub/
            RUN cat /below.txt /opt/app/app.txt /w/sub/rel.txt > /seen.txt
            """;
        // Values no other test builds: the first build must run every step here.
        var (one, two, app) = (Guid.NewGuid().ToString("N"), Guid.NewGuid().ToString("N"), Guid.NewGuid().ToString("N"));
        var context = fixture.Context(("Dockerfile", string.Format(System.Globalization.CultureInfo.InvariantCulture, dockerfile, one)), ("app.txt", app + "\n"), ("rel.txt", "rel\n"));
        var first = Ok(await fixture.Farm("build", "--progress", "rawjson", context));
        Assert.All(Finished(first.Stdout).Where(s => ((string)s["display"]!).StartsWith("COPY --link", StringComparison.Ordinal)), s => Assert.False((bool)s["cached"]!));

        File.WriteAllText(Path.Combine(context, "Dockerfile"), string.Format(System.Globalization.CultureInfo.InvariantCulture, dockerfile, two));
        var rootfs = Path.Combine(fixture.Directory, "rootfs-" + Guid.NewGuid().ToString("N")[..8]);
        var again = Ok(await fixture.Farm("build", "--progress", "rawjson", "--output", $"type=local,dest={rootfs}", context));

        var steps = Finished(again.Stdout);
        Assert.False(Cached(steps, "RUN echo"));
        Assert.True(Cached(steps, "COPY --link app.txt"));
        Assert.True(Cached(steps, "COPY --link rel.txt"));
        Assert.False(Cached(steps, "RUN cat"));
        Assert.Equal($"{two}\n{app}\nrel\n", File.ReadAllText(Path.Combine(rootfs, "seen.txt")));
        Assert.Equal(app + "\n", File.ReadAllText(Path.Combine(rootfs, "opt/app/app.txt")));
        Assert.Equal("rel\n", File.ReadAllText(Path.Combine(rootfs, "w/sub/rel.txt")));
        Assert.True(File.Exists(Path.Combine(rootfs, "bin/busybox")), "the base's files are under the --link layers");
    }

    private static List<JsonNode> Finished(string stdout) =>
        [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!)
            .Where(e => (string?)e["type"] == "StepFinished").Select(e => e["outcome"]!)];

    private static bool Cached(List<JsonNode> steps, string textStart) =>
        (bool)Assert.Single(steps, s => ((string)s["display"]!).StartsWith(textStart, StringComparison.Ordinal))["cached"]!;

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}
