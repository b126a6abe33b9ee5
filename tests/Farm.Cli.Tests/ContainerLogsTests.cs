namespace Farm.Cli.Tests;

/// <summary><c>farm logs --tail</c> of a container, against real runc.</summary>
public sealed class ContainerLogsTests(ContainerFixture farm) : IClassFixture<ContainerFixture>
{
    [Fact]
    public async Task Tail_shows_only_the_last_lines_of_a_containers_output()
    {
        var name = "tailer-" + Guid.NewGuid().ToString("N")[..8];
        await farm.Ok("run", "--name", name, "bb", "sh", "-c", "i=1; while [ $i -le 500 ]; do echo line-$i; i=$((i+1)); done; printf unterminated");

        Assert.Equal("line-499\nline-500\nunterminated", await farm.Ok("logs", "--tail", "3", name));
        Assert.Equal("unterminated", await farm.Ok("logs", "-n", "1", name));
        Assert.Equal("", await farm.Ok("logs", "--tail", "0", name));
        var all = await farm.Ok("logs", "--tail", "all", name);
        Assert.StartsWith("line-1\nline-2\n", all, StringComparison.Ordinal);
        Assert.Equal(all, await farm.Ok("logs", "--tail", "100000", name));
        Assert.Equal(all, await farm.Ok("logs", name));

        var refused = await farm.Farm("logs", "--tail", "many", name);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("farm: FARM5010: ", refused.Stderr, StringComparison.Ordinal);
    }
}
