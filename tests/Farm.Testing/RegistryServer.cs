using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Farm.Oci.Net;

namespace Farm.Testing;

/// <summary>
/// A distribution registry of a test's own (<c>docker-registry serve</c>, the one infra/registry.sh runs) on a free
/// loopback port with its own storage directory: for tests that run its garbage collection, which must never touch the
/// registries other tests share. Anonymous, plain HTTP; deletes enabled or not.
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    private readonly string _directory;
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;

    private RegistryServer(int port, string directory)
    {
        Port = port;
        _directory = directory;
    }

    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>.</summary>
    public string Address => "127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>The filesystem storage root.</summary>
    public string StorageDirectory => Path.Combine(_directory, "storage");

    public string ConfigPath => Path.Combine(_directory, "config.yml");

    /// <param name="deletes">Whether the registry allows deleting manifests and blobs (<c>storage.delete.enabled</c>).</param>
    public static async Task<RegistryServer> StartAsync(bool deletes = true)
    {
        var directory = Directory.CreateTempSubdirectory("farm-registry-").FullName;
        var server = new RegistryServer(FreePorts.Tcp(), directory);
        await File.WriteAllLinesAsync(server.ConfigPath,
        [
            "version: 0.1",
            "log:",
            "  level: info",
            "storage:",
            "  filesystem:",
            $"    rootdirectory: {server.StorageDirectory}",
            "  delete:",
            $"    enabled: {(deletes ? "true" : "false")}",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            $"  addr: {server.Address}",
            $"  secret: farm-test-{Guid.NewGuid():N}",
        ]).ConfigureAwait(false);
        await server.StartProcessAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>
    /// Runs <c>docker-registry garbage-collect</c> on the storage as the registry's documentation asks: with the registry
    /// stopped, so nothing is uploaded meanwhile; then starts it again. Returns the collector's output.
    /// </summary>
    public async Task<string> GarbageCollectAsync()
    {
        await StopAsync().ConfigureAwait(false);
        var output = await Tool.RunAsync("docker-registry", "garbage-collect", ConfigPath).ConfigureAwait(false);
        await StartProcessAsync().ConfigureAwait(false);
        return output;
    }

    /// <summary>Whether the storage holds blob <paramref name="digest"/>'s data (<c>sha256:HEX</c>): what a garbage collection deletes.</summary>
    public bool HoldsBlob(string digest)
    {
        var hex = digest["sha256:".Length..];
        return File.Exists(Path.Combine(StorageDirectory, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data"));
    }

    public string OutputTail() => FarmProcess.Tail(_output);

    /// <summary>Every line the registry logged so far (its request log included).</summary>
    public string Output() => string.Join(Environment.NewLine, _output);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _process?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    private async Task StartProcessAsync()
    {
        _process?.Dispose();
        _process = FarmProcess.StartService("docker-registry", "docker-registry", ["serve", ConfigPath], _directory, _output);
        try
        {
            await TestRegistries.EnsureAnsweringAsync(Address, timeout: TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"docker-registry serve {ConfigPath} did not answer:{Environment.NewLine}{OutputTail()}", e);
        }
    }
}
