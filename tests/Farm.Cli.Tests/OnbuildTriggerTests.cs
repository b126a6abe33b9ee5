using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// ONBUILD triggers of a base image made by <c>farm build</c> run in a build on it, right after FROM, and the child
/// image does not keep them.
/// </summary>
public sealed class OnbuildTriggerTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    [Fact]
    public async Task The_triggers_of_a_base_built_with_farm_run_in_the_child_after_FROM_and_the_child_does_not_inherit_them()
    {
        var marker = Guid.NewGuid().ToString("N");
        var baseContext = fixture.Context(("Dockerfile", """
            FROM farm-test-busybox:1
            ONBUILD COPY . /app
            ONBUILD RUN cat /app/in.txt > /app/seen.txt
            """));
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "onbuild-base:1", baseContext));
        var baseConfig = JsonNode.Parse(Ok(await fixture.Farm("inspect", "onbuild-base:1")).Stdout)!.AsArray()[0]!["config"]!;
        Assert.Equal(["COPY . /app", "RUN cat /app/in.txt > /app/seen.txt"], baseConfig["OnBuild"]!.AsArray().Select(t => (string)t!).ToArray());

        var child = fixture.Context(("Dockerfile", "FROM onbuild-base:1\nRUN cat /app/seen.txt > /child.txt\n"), ("in.txt", marker + "\n"));
        var rootfs = Path.Combine(fixture.Directory, "rootfs-" + marker[..8]);
        var built = Ok(await fixture.Farm("build", "--progress", "plain", "-t", "onbuild-child:1", "--output", $"type=local,dest={rootfs}", child));

        Assert.Contains("COPY . /app", built.Stderr, StringComparison.Ordinal);
        Assert.Equal(marker + "\n", File.ReadAllText(Path.Combine(rootfs, "app/in.txt")));
        Assert.Equal(marker + "\n", File.ReadAllText(Path.Combine(rootfs, "child.txt")));
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "onbuild-child:1", child));
        var childConfig = JsonNode.Parse(Ok(await fixture.Farm("inspect", "onbuild-child:1")).Stdout)!.AsArray()[0]!["config"]!;
        Assert.Null(childConfig["OnBuild"]);
    }

    [Fact]
    public async Task A_trigger_that_cannot_run_in_the_child_fails_the_build_at_its_FROM_line_with_FARM1340()
    {
        var baseContext = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\nONBUILD COPY --from=tools /x /x\n"));
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "onbuild-from:1", baseContext));
        var child = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1 AS tools\nRUN echo x > /x\n\nFROM onbuild-from:1\nRUN true\n"));

        var refused = await fixture.Farm("build", "--progress", "plain", child);

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("FARM1340: ", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("Dockerfile:4:1: the base onbuild-from:1 has the ONBUILD trigger 'COPY --from=tools /x /x'", refused.Stderr, StringComparison.Ordinal);
    }

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}
