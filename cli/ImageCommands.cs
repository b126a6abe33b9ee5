using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Cli.Remote;
using Farm.Containers;
using Farm.Contracts;
using Farm.Dockerfile.Changes;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.Registry;

namespace Farm.Cli;

/// <summary>
/// The classic image commands over the local store (<see cref="LocalImageStore"/>): images, tag, rmi, inspect,
/// pull, push, import, save, load. Output and flags follow docker's where that is cheap.
/// </summary>
internal static class ImageCommands
{
    public static IEnumerable<Command> All()
    {
        yield return Images();
        yield return History();
        yield return Tag();
        yield return Rmi();
        yield return Inspect();
        yield return Pull();
        yield return Push();
        yield return Import();
        yield return Save();
        yield return Load();
    }

    // PLATFORM last: scripts that cut docker's five columns keep working.
    private static readonly string[] ImagesHeader = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "PLATFORM"];

    private static Command Images()
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only show image ids." };
        var command = new Command("images", "List the local images.") { quiet };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var rows = await store.ListAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(quiet))
            {
                foreach (var id in rows.Select(r => r.ShortId).Distinct())
                {
                    output.WriteLine(id);
                }

                return;
            }

            var now = DateTimeOffset.UtcNow;
            var table = new List<string[]> { ImagesHeader };
            table.AddRange(rows.Select(r => new[]
            {
                r.Repository ?? "<none>", r.Tag ?? "<none>", r.ShortId,
                r.Created is { } created ? HumanTime.Since(created, now) + " ago" : "N/A", HumanSize(r.Size), r.Platform ?? "unknown",
            }));

            // Columns as wide as their widest cell plus three spaces, as docker's tabwriter lays them out.
            var widths = Enumerable.Range(0, ImagesHeader.Length).Select(i => table.Max(row => row[i].Length) + 3).ToArray();
            foreach (var row in table)
            {
                output.WriteLine(string.Concat(row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))));
            }
        }));
        return command;
    }

    private static readonly string[] HistoryHeader = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"];

    /// <summary>
    /// <c>docker history</c>: the config's history, newest first, each entry that made a layer paired with that layer
    /// (the n-th such entry with the n-th layer of the manifest, as the image spec pairs them).
    /// </summary>
    /// <remarks>
    /// As docker, only the top row names the image; the rows below have no image of their own in the store and show
    /// <c>&lt;missing&gt;</c>. SIZE is the layer blob as stored (compressed), the size <c>farm images</c> adds up.
    /// https://github.com/opencontainers/image-spec/blob/main/config.md (history)
    /// </remarks>
    private static Command History()
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only show image ids (<missing> for the rows below the top)." };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "Do not shorten ids and CREATED BY." };
        var human = new Option<bool>("--human", "-H") { Description = "Ages and sizes for humans (-H=false: RFC 3339 times and bytes).", DefaultValueFactory = _ => true };
        var name = new Argument<string>("IMAGE");
        var command = new Command("history", "Show how a local image was made: its history entries and their layers, newest first.") { quiet, noTrunc, human, name };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var image = await store.GetAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            var full = parse.GetValue(noTrunc);
            var rows = HistoryRows(image);
            if (parse.GetValue(quiet))
            {
                foreach (var row in rows)
                {
                    output.WriteLine(row.Top ? (full ? image.Id.ToString() : image.ShortId) : "<missing>");
                }

                return;
            }

            var forHumans = parse.GetValue(human);
            var now = DateTimeOffset.UtcNow;
            var table = new List<string[]> { HistoryHeader };
            table.AddRange(rows.Select(r => new[]
            {
                r.Top ? (full ? image.Id.ToString() : image.ShortId) : "<missing>",
                r.Entry.Created is not { } created ? "N/A" : forHumans ? HumanTime.Since(created, now) + " ago" : created.ToString("yyyy-MM-ddTHH:mm:ssK", CultureInfo.InvariantCulture),
                CreatedBy(r.Entry.CreatedBy, full),
                forHumans ? HumanSize(r.Size) : r.Size.ToString(CultureInfo.InvariantCulture),
                r.Entry.Comment ?? string.Empty,
            }));

            var widths = Enumerable.Range(0, HistoryHeader.Length).Select(i => table.Max(row => row[i].Length) + 3).ToArray();
            foreach (var row in table)
            {
                output.WriteLine(string.Concat(row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
            }
        }));
        return command;
    }

    private sealed record HistoryRow(HistoryEntry Entry, long Size, bool Top);

    private static List<HistoryRow> HistoryRows(LocalImage image)
    {
        var layers = image.Manifest.Layers;
        var rows = new List<HistoryRow>();
        var next = 0;
        foreach (var entry in image.Config.History)
        {
            var size = !entry.EmptyLayer && next < layers.Count ? layers[next++].Size : 0;
            rows.Add(new HistoryRow(entry, size, Top: false));
        }

        rows.Reverse();
        if (rows.Count > 0)
        {
            rows[0] = rows[0] with { Top = true };
        }

        return rows;
    }

    // docker's formatter: tabs become spaces, and a truncated line is its first 44 characters and an ellipsis.
    private static string CreatedBy(string? createdBy, bool full)
    {
        var text = (createdBy ?? string.Empty).Replace('\t', ' ');
        return full || text.Length <= 45 ? text : string.Concat(text.AsSpan(0, 44), "…");
    }

    private static Command Tag()
    {
        var source = new Argument<string>("SOURCE");
        var target = new Argument<string>("TARGET");
        var command = new Command("tag", "Give a local image another name.") { source, target };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, _) =>
            await store.TagAsync(parse.GetValue(source)!, parse.GetValue(target)!, ct).ConfigureAwait(false)));
        return command;
    }

    private static Command Rmi()
    {
        var force = new Option<bool>("--force", "-f") { Description = "Remove the names even of an image a container uses (the image stays for it, unnamed)." };
        var names = new Argument<string[]>("NAME") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("rmi", "Remove local images (by name, or every name of an id); one a container uses only with -f.") { force, names };
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            try
            {
                using var store = await LocalImageStore.OpenAsync(null, ct).ConfigureAwait(false);
                // The containers (farm run, farm create), running or not, by the image id they were made from.
                var users = new ContainerRuntime().Store.List()
                    .GroupBy(c => c.ImageId, StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => g.First().Name, StringComparer.Ordinal);
                return await CliErrors.EachAsync(parse.GetValue(names)!, error, async name =>
                {
                    var removal = await store.RemoveAsync(name, id => users.GetValueOrDefault(id.ToString()), parse.GetValue(force), ct).ConfigureAwait(false);
                    foreach (var untagged in removal.Untagged)
                    {
                        output.WriteLine($"Untagged: {untagged}");
                    }

                    foreach (var deleted in removal.Deleted)
                    {
                        output.WriteLine($"Deleted: {deleted}");
                    }
                }).ConfigureAwait(false);
            }
            catch (Exception e) when (CliErrors.Handles(e))
            {
                return CliErrors.Report(e, error);
            }
        });
        return command;
    }

    private static Command Inspect()
    {
        var names = new Argument<string[]>("NAME") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("inspect", "Show local images as JSON: the image config with Id, RepoTags and Digest.") { names };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var array = new JsonArray();
            foreach (var name in parse.GetValue(names)!)
            {
                var image = await store.GetAsync(name, ct).ConfigureAwait(false);
                var node = new JsonObject
                {
                    ["Id"] = image.Id.ToString(),
                    ["RepoTags"] = new JsonArray([.. image.Names.Where(IsNamed).Select(n => (JsonNode?)n)]),
                    ["Digest"] = image.ManifestDescriptor.Digest.ToString(),
                    ["MediaType"] = image.ManifestDescriptor.MediaType,
                    ["Size"] = image.Size,
                };
                foreach (var (key, value) in image.Config.Root)
                {
                    node[key] = value?.DeepClone();
                }

                // docker inspect spells the execution parameters Config, as the image config does.
                array.Add((JsonNode)node);
            }

            output.WriteLine(array.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }));
        return command;
    }

    private static Command Pull()
    {
        var name = new Argument<string>("NAME");
        var platform = new Option<string?>("--platform") { Description = "The platform whose image to take from an index (os/arch[/variant]; default linux/amd64)." };
        var command = new Command("pull", "Fetch an image (from an index, its image for --platform, linux/amd64 by default) from a registry into the local store.") { name, platform };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var registry = CliRegistryOptions.FromEnvironment();
            if (PlatformOption(parse.GetValue(platform)) is { } wanted)
            {
                registry = registry with { Platform = wanted };
            }

            var image = await store.PullAsync(parse.GetValue(name)!, DockerConfig.Default(), registry, new Progress(output), ct).ConfigureAwait(false);
            output.WriteLine($"Digest: {image.ManifestDescriptor.Digest}");
            output.WriteLine(image.Names.Count > 0 ? image.Names[0] : string.Empty);
        }));
        return command;
    }

    private static Command Push()
    {
        var name = new Argument<string>("NAME");
        var command = new Command("push", "Send a local image to the registry its name points at (credentials from docker's config.json).") { name };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var digest = await store.PushAsync(parse.GetValue(name)!, DockerConfig.Default(), CliRegistryOptions.FromEnvironment(), new Progress(output), ct).ConfigureAwait(false);
            output.WriteLine($"digest: {digest}");
        }));
        return command;
    }

    private static Command Import()
    {
        var file = new Argument<string>("FILE") { Description = "A root filesystem tar (plain or gzip), or - for standard input." };
        var name = new Argument<string?>("NAME") { Arity = ArgumentArity.ZeroOrOne };
        var changes = new Option<string[]>("--change", "-c") { Description = "A Dockerfile instruction applied to the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL.", AllowMultipleArgumentsPerToken = false };
        var message = new Option<string?>("--message", "-m") { Description = "The history comment." };
        var platform = new Option<string?>("--platform") { Description = "The platform the root filesystem's programs run on (os/arch[/variant]; default linux/amd64)." };
        var command = new Command("import", "Make a one-layer image from a root filesystem tar.") { file, name, changes, message, platform };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var path = parse.GetValue(file)!;
            var config = ImageConfig.CreateEmpty(PlatformOption(parse.GetValue(platform)));
            ConfigChanges.Apply(config, parse.GetValue(changes) ?? []);
            var input = path == "-" ? Console.OpenStandardInput() : (Stream)OpenFile(path);
            await using (input.ConfigureAwait(false))
            {
                var image = await store.ImportAsync(input, path, parse.GetValue(name), config, parse.GetValue(message), ct).ConfigureAwait(false);
                output.WriteLine(image.Id.ToString());
            }
        }));
        return command;
    }

    private static Command Save()
    {
        var outputFile = new Option<string>("--output", "-o") { Description = "The docker-archive tar to write.", Required = true };
        var name = new Argument<string>("NAME");
        var command = new Command("save", "Write a local image as a docker-archive tar (docker load, podman load).") { outputFile, name };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, _) =>
        {
            var image = await store.GetAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            var tags = image.Names.Where(IsNamed).ToList();
            await ImageExporter.WriteDockerArchiveAsync(image, Path.GetFullPath(parse.GetValue(outputFile)!), tags, [store.Layout], ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command Load()
    {
        var inputFile = new Option<string>("--input", "-i") { Description = "A docker-archive or oci-archive tar (plain or gzip).", Required = true };
        var command = new Command("load", "Add the images of a docker-archive or oci-archive tar to the local store.") { inputFile };
        command.SetAction((parse, ct) => RunAsync(parse, async (store, output) =>
        {
            var path = parse.GetValue(inputFile)!;
            var input = OpenFile(path);
            await using (input.ConfigureAwait(false))
            {
                foreach (var image in await store.LoadAsync(input, path, ct).ConfigureAwait(false))
                {
                    var named = image.Names.Where(IsNamed).ToList();
                    output.WriteLine(named.Count > 0 ? string.Join(Environment.NewLine, named.Select(n => $"Loaded image: {n}")) : $"Loaded image ID: {image.Id}");
                }
            }
        }));
        return command;
    }

    private static bool IsNamed(string name) => !Digest.TryParse(name, out _);

    /// <summary>Whether an image config is for <paramref name="platform"/> (its os and architecture).</summary>
    internal static bool IsFor(ImageConfig config, Platform platform) =>
        config.Os == platform.Os && (Platform.TryParse(config.Architecture)?.Architecture ?? config.Architecture) == platform.Architecture;

    /// <summary>A <c>--platform</c> value as a platform; null when none was given.</summary>
    /// <exception cref="InvalidCliArgumentException">It is not <c>os/arch[/variant]</c> (FARM5010).</exception>
    internal static Platform? PlatformOption(string? value) =>
        value is null ? null : Platform.TryParse(value) ?? throw new InvalidCliArgumentException($"--platform {value} is not a platform: write os/arch[/variant], e.g. linux/arm64");

    private static FileStream OpenFile(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidImageArchiveException(path, $"cannot be read: {e.Message}", e);
        }
    }

    private static async Task<int> RunAsync(ParseResult parse, Func<LocalImageStore, TextWriter, Task> action)
    {
        var error = parse.InvocationConfiguration.Error;
        try
        {
            using var store = await LocalImageStore.OpenAsync(null, CancellationToken.None).ConfigureAwait(false);
            await action(store, parse.InvocationConfiguration.Output).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (CliErrors.Handles(e))
        {
            return CliErrors.Report(e, error);
        }
    }

    // docker's units.HumanSize: decimal units, three significant digits.
    private static string HumanSize(long bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }

        return value.ToString("0.##", CultureInfo.InvariantCulture) + units[unit];
    }

    private sealed class Progress(TextWriter output) : IProgress<string>
    {
        public void Report(string value) => output.WriteLine(value);
    }
}
