using System.Diagnostics;
using Farm.Contracts;
using Farm.Oci.Layers;
using Farm.Oci.Net;
using Farm.Oci.Stores;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>
/// A busybox base layer published into a fresh repository of the anonymous test registry (after
/// Farm.Worker.Tests' ExecutorFixture, which this project cannot reference). The registry must run (infra/up.sh);
/// runc and busybox-static must be installed.
/// </summary>
public sealed class LayerStoreFixture : IAsyncDisposable
{
    private readonly BlobStoreLocator _stores = new();

    public LayerStoreFixture()
    {
        Root = Path.Combine("/tmp", "cx" + Guid.NewGuid().ToString("N")[..6]);
        Repository = $"farm/test-{Guid.NewGuid():N}";
        StoreAddress = $"registry://{TestRegistries.Anonymous}/{Repository}";
    }

    /// <summary>Short scratch root (overlayfs mount options are limited): workers' state directories live below it.</summary>
    public string Root { get; }

    public string Repository { get; }

    public string StoreAddress { get; }

    public LayerRef BaseLayer { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists("/usr/sbin/runc") && !File.Exists("/usr/bin/runc"))
        {
            throw new InvalidOperationException("runc is required: apt-get install runc (or run infra/install.sh).");
        }

        // Fails naming infra/up.sh when the registry does not answer.
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);

        Directory.CreateDirectory(Root);
        var store = await _stores.OpenAsync(StoreAddress, CancellationToken.None);
        var baseDir = Path.Combine(Root, "base");
        BusyboxLayer.Build(baseDir);
        using var buffer = new MemoryStream();
        var result = await LayerWriter.WriteDirectoryAsync(baseDir, buffer, new LayerWriteOptions(), CancellationToken.None);
        buffer.Position = 0;
        await store.PutAsync(result.Descriptor, buffer, CancellationToken.None);
        BaseLayer = new LayerRef(result.Descriptor.Digest.ToString(), result.DiffId.ToString(), result.Descriptor.MediaType, result.Descriptor.Size);
    }

    public static LayerStep Run(string command) =>
        new() { Kind = StepKind.Run, Display = "RUN " + command, Run = new RunStep { Args = ["/bin/sh", "-c", command] } };

    /// <summary>A cache key no other test uses.</summary>
    public static string NewKey() => "sha256:" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");

    public async ValueTask DisposeAsync()
    {
        // Leave nothing mounted even when a test failed half-way.
        foreach (var mount in Mounts.Under(Root).OrderByDescending(m => m.Length))
        {
            await Tool.RunAsync("umount", "-l", mount);
        }

        _stores.Dispose();
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
