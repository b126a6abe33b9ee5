using System.Formats.Tar;
using System.IO.Compression;
using Farm.Containers.Snapshots;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Layers;
using Farm.Oci.Stores;
using Farm.Testing;
using Farm.Worker.Jobs;

namespace Farm.Worker.Tests;

/// <summary>
/// A busybox base layer published into a fresh repository of the anonymous test registry, and a
/// <see cref="LayerJobExecutor"/> with its own state directory reading from and writing to that repository.
/// The registry must be running (infra/up.sh); runc and busybox-static must be installed.
/// </summary>
public sealed class ExecutorFixture : IAsyncLifetime
{
    public ExecutorFixture()
    {
        Root = Path.Combine("/tmp", "fx" + Guid.NewGuid().ToString("N")[..6]);
        StoreAddress = $"registry://{TestRegistries.Anonymous}/farm/test-{Guid.NewGuid():N}";
        Stores = new BlobStoreLocator();
    }

    /// <summary>Short scratch root: state directories of executors live below it.</summary>
    public string Root { get; }

    /// <summary>A repository of its own for this test run.</summary>
    public string StoreAddress { get; }

    public BlobStoreLocator Stores { get; }

    public IBlobStore Store { get; private set; } = null!;

    /// <summary>
    /// busybox (see <see cref="BusyboxLayer"/>) plus /etc/todelete, /var/junk/{a,b} and
    /// /etc/keep for steps to delete and modify.
    /// </summary>
    public LayerRef BaseLayer { get; private set; } = null!;

    public LayerJobExecutor Executor { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists("/usr/sbin/runc") && !File.Exists("/usr/bin/runc"))
        {
            throw new InvalidOperationException("runc is required for the executor tests: apt-get install runc (or run infra/install.sh).");
        }

        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        Directory.CreateDirectory(Root);
        Store = await Stores.OpenAsync(StoreAddress, CancellationToken.None);

        var baseDir = Path.Combine(Root, "base");
        BusyboxLayer.Build(baseDir);
        File.WriteAllText(Path.Combine(baseDir, "etc", "todelete"), "bye\n");
        File.WriteAllText(Path.Combine(baseDir, "etc", "keep"), "kept\n");
        Directory.CreateDirectory(Path.Combine(baseDir, "var", "junk"));
        File.WriteAllText(Path.Combine(baseDir, "var", "junk", "a"), "a\n");
        File.WriteAllText(Path.Combine(baseDir, "var", "junk", "b"), "b\n");
        BaseLayer = await PublishDirectoryAsync(baseDir);
        Executor = NewExecutor("w0");
    }

    /// <summary>An executor with a state directory of its own (so a fresh layer store).</summary>
    public LayerJobExecutor NewExecutor(string name) =>
        new(new WorkerOptions { Name = name, StateDirectory = Path.Combine(Root, name) }, Stores);

    /// <summary>Writes <paramref name="directory"/> as a gzip layer and stores it; returns its reference.</summary>
    public async Task<LayerRef> PublishDirectoryAsync(string directory)
    {
        using var buffer = new MemoryStream();
        var result = await LayerWriter.WriteDirectoryAsync(directory, buffer, new LayerWriteOptions(), CancellationToken.None);
        buffer.Position = 0;
        await Store.PutAsync(result.Descriptor, buffer, CancellationToken.None);
        return new LayerRef(result.Descriptor.Digest.ToString(), result.DiffId.ToString(), result.Descriptor.MediaType, result.Descriptor.Size);
    }

    /// <summary>Stores an uncompressed tar (a build context) and returns its digest.</summary>
    public async Task<string> PublishTarAsync(byte[] tar)
    {
        var descriptor = new Descriptor { MediaType = MediaTypes.OciLayerTar, Digest = Digest.Sha256(tar), Size = tar.Length };
        using var stream = new MemoryStream(tar, writable: false);
        await Store.PutAsync(descriptor, stream, CancellationToken.None);
        return descriptor.Digest.ToString();
    }

    public BuildLayer Job(LayerStep step, params LayerRef[] parents) => new()
    {
        JobId = Guid.NewGuid(),
        BuildId = Guid.NewGuid(),
        StepId = "stage-0/step-1",
        CacheKey = "sha256:" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N"),
        BlobStore = StoreAddress,
        Parents = parents.Length == 0 ? [BaseLayer] : parents,
        Step = step,
        EnqueuedAt = DateTimeOffset.UtcNow,
    };

    public static LayerStep Run(string command, Func<RunStep, RunStep>? configure = null)
    {
        var run = new RunStep { Args = ["/bin/sh", "-c", command] };
        return new LayerStep { Kind = StepKind.Run, Display = "RUN " + command, Run = configure?.Invoke(run) ?? run };
    }

    /// <summary>Runs a job, collecting what the step printed.</summary>
    public async Task<(LayerJobResult Result, List<string> Output)> ExecuteAsync(BuildLayer job, LayerJobExecutor? executor = null)
    {
        var output = new List<string>();
        var result = await (executor ?? Executor).ExecuteAsync(job, (_, line) =>
        {
            lock (output)
            {
                output.Add(line);
            }

            return Task.CompletedTask;
        }, CancellationToken.None);
        return (result, output);
    }

    /// <summary>Reads a layer from the store with the BCL's tar reader (an independent check of what the worker wrote).</summary>
    public async Task<List<LayerEntry>> ReadLayerAsync(LayerRef layer)
    {
        var blob = await Store.OpenReadAsync(Digest.Parse(layer.Digest), CancellationToken.None);
        await using var _ = blob;
        await using var gzip = new GZipStream(blob, CompressionMode.Decompress);
        await using var reader = new TarReader(gzip);
        var entries = new List<LayerEntry>();
        while (await reader.GetNextEntryAsync(copyData: true) is { } entry)
        {
            string? content = null;
            if (entry.DataStream is { } data)
            {
                using var text = new StreamReader(data);
                content = await text.ReadToEndAsync();
            }

            entries.Add(new LayerEntry(entry.Name.TrimEnd('/'), entry.EntryType, entry.Uid, entry.Gid, (int)entry.Mode, content));
        }

        return entries;
    }

    public async Task DisposeAsync()
    {
        Executor?.Dispose();
        foreach (var mount in MountPoints.Under(Root))
        {
            MountPoints.Detach(mount);
        }

        Stores.Dispose();
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }

        await Task.CompletedTask;
    }
}

/// <summary>One entry of a layer tar, as the BCL reads it.</summary>
public sealed record LayerEntry(string Name, TarEntryType Type, int Uid, int Gid, int Mode, string? Content);

[CollectionDefinition(Name)]
public sealed class ExecutorCollection : ICollectionFixture<ExecutorFixture>
{
    public const string Name = "executor";
}
