using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary><c>farm history</c> on an image <c>farm build</c> made and on one <c>farm commit -m</c> made from it.</summary>
public sealed class HistoryCommandTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    [Fact]
    public async Task History_lists_the_entries_newest_first_with_layer_sizes_and_the_commit_message()
    {
        var marker = Guid.NewGuid().ToString("N");
        var longRun = $"echo {marker} > /made.txt && echo padding-so-the-line-is-longer-than-forty-five";
        var context = fixture.Context(("Dockerfile", $"FROM {BuildFixture.Base}\nRUN {longRun}\nENV MODE=test\nCMD [\"cat\", \"/made.txt\"]\n"));
        Ok(await fixture.Farm("build", "-t", "hist:1", context));

        var built = Rows(Ok(await fixture.Farm("history", "hist:1")).Stdout);
        var id = ((string)JsonNode.Parse(Ok(await fixture.Farm("inspect", "hist:1")).Stdout)!.AsArray()[0]!["Id"]!)["sha256:".Length..];
        Assert.Equal(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], Header(Ok(await fixture.Farm("history", "hist:1")).Stdout));

        // Newest first: CMD, ENV, RUN, then the base image's own entry; only the top row names the image.
        Assert.True(built.Count >= 4, string.Join('\n', built));
        Assert.StartsWith(id[..12] + " ", built[0], StringComparison.Ordinal);
        Assert.All(built.Skip(1), row => Assert.StartsWith("<missing> ", row, StringComparison.Ordinal));
        Assert.Contains("CMD [\"cat\" \"/made.txt\"]", built[0], StringComparison.Ordinal);
        Assert.Contains(" 0B ", built[0], StringComparison.Ordinal);
        Assert.Contains("ENV MODE=test", built[1], StringComparison.Ordinal);
        Assert.Contains(" 0B ", built[1], StringComparison.Ordinal);
        Assert.All(built, row => Assert.Contains(" ago ", row, StringComparison.Ordinal));
        Assert.EndsWith("buildkit.dockerfile.v0", built[0], StringComparison.Ordinal);

        // The RUN line is cut at 45 characters with an ellipsis; its layer has a size; --no-trunc shows it whole.
        // The row and the header of one listing: the columns' widths follow their contents ("9 seconds ago", then
        // "10 seconds ago"), so a row of one listing does not line up with the header of another.
        var listing = Ok(await fixture.Farm("history", "hist:1")).Stdout;
        var createdBy = Cell(Rows(listing)[2], "CREATED BY", listing);
        Assert.Equal(45, createdBy.Length);
        Assert.EndsWith("…", createdBy, StringComparison.Ordinal);
        Assert.DoesNotContain(" 0B ", built[2], StringComparison.Ordinal);
        Assert.Matches(@" \d+(\.\d+)?(B|kB) ", built[2]);
        var whole = Rows(Ok(await fixture.Farm("history", "--no-trunc", "hist:1")).Stdout);
        Assert.StartsWith("sha256:" + id + " ", whole[0], StringComparison.Ordinal);
        Assert.Contains(longRun, whole[2], StringComparison.Ordinal);

        // -H=false: RFC 3339 times and sizes in bytes.
        var raw = Rows(Ok(await fixture.Farm("history", "-H=false", "hist:1")).Stdout);
        Assert.Matches(@"^\S+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\s", raw[0]);
        Assert.Contains(" 0 ", raw[0], StringComparison.Ordinal);

        // farm commit -m: one more entry on top, with its comment, its own id, and the quiet listing.
        Ok(await fixture.Farm("run", "--name", $"hist-{marker[..8]}", "hist:1", "sh", "-c", "echo changed > /changed.txt"));
        Ok(await fixture.Farm("commit", "-m", "a change by hand", $"hist-{marker[..8]}", "hist:2"));
        var committed = Rows(Ok(await fixture.Farm("history", "hist:2")).Stdout);
        Assert.Equal(built.Count + 1, committed.Count);
        Assert.EndsWith("a change by hand", committed[0], StringComparison.Ordinal);
        Assert.DoesNotContain(" 0B ", committed[0], StringComparison.Ordinal);
        Assert.StartsWith("<missing> ", committed[1], StringComparison.Ordinal);

        var quiet = Ok(await fixture.Farm("history", "-q", "hist:2")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var committedId = ((string)JsonNode.Parse(Ok(await fixture.Farm("inspect", "hist:2")).Stdout)!.AsArray()[0]!["Id"]!)["sha256:".Length..];
        Assert.Equal([committedId[..12], .. Enumerable.Repeat("<missing>", built.Count)], quiet);
        Ok(await fixture.Farm("rm", $"hist-{marker[..8]}"));
    }

    [Fact]
    public async Task History_of_an_unknown_image_is_the_no_such_image_error()
    {
        var missing = await fixture.Farm("history", "no-such-image:1");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("farm: FARM5001: no such image: no-such-image:1", missing.Stderr, StringComparison.Ordinal);
    }

    private static List<string> Rows(string stdout) => [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)];

    private static string[] Header(string stdout) =>
        stdout.Split('\n')[0].Split("   ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    // A cell by the column's start in the header line (the table is aligned as docker's).
    private static string Cell(string row, string column, string stdout)
    {
        var header = stdout.Split('\n')[0];
        var start = header.IndexOf(column, StringComparison.Ordinal);
        var end = header.IndexOf("SIZE", StringComparison.Ordinal);
        return row[start..end].TrimEnd();
    }

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}
