using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// One private farm state (FARM_STATE_DIR) and docker config (DOCKER_CONFIG) per test class, with a busybox base image
/// imported from the host's busybox-static (<see cref="Base"/>), so builds need no registry for FROM.
/// </summary>
public sealed class BuildFixture : IAsyncLifetime
{
    public const string Base = "farm-test-busybox:1";

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-build-").FullName;

    public Dictionary<string, string> Env => new()
    {
        ["FARM_STATE_DIR"] = Path.Combine(Directory, "state"),
        ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
        ["FARM_HOST"] = string.Empty,
    };

    public async Task InitializeAsync()
    {
        if (!File.Exists("/bin/busybox"))
        {
            throw new InvalidOperationException("/bin/busybox is missing: run infra/install.sh (apt-get install -y busybox-static).");
        }

        var result = await Farm("import", "-c", "CMD [\"sh\"]", BusyboxRootfs(Directory), Base);
        Assert.True(result.ExitCode == 0, $"farm import failed: {result.Stderr}");
    }

    public async Task DisposeAsync()
    {
        // The local farm daemon of this state directory goes first: it holds the worker's files.
        await Farm("daemon", "stop");
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    internal Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    /// <summary>A new context directory holding <paramref name="files"/> (path, content).</summary>
    public string Context(params (string Path, string Content)[] files)
    {
        var dir = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        foreach (var (path, content) in files)
        {
            var full = Path.Combine(dir, path);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content, new UTF8Encoding(false));
        }

        return dir;
    }

    /// <summary>/bin/busybox with a symlink per applet, /etc/passwd and /tmp, as a rootfs tar.</summary>
    public static string BusyboxRootfs(string directory)
    {
        var path = Path.Combine(directory, "busybox-rootfs.tar");
        using var file = File.Create(path);
        using var tar = new TarWriter(file, TarEntryFormat.Pax);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "bin/"));
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "etc/"));
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "tmp/") { Mode = (UnixFileMode)0b1_111_111_111 });
        tar.WriteEntry("/bin/busybox", "bin/busybox");
        var passwd = Encoding.UTF8.GetBytes("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/passwd") { DataStream = new MemoryStream(passwd) });
        var group = Encoding.UTF8.GetBytes("root:x:0:\nnogroup:x:65534:\n");
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/group") { DataStream = new MemoryStream(group) });
        using var list = Process.Start(new ProcessStartInfo("/bin/busybox", "--list") { RedirectStandardOutput = true })!;
        foreach (var applet in list.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(a => a != "busybox"))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, $"bin/{applet}") { LinkName = "busybox" });
        }

        list.WaitForExit();
        return path;
    }
}
