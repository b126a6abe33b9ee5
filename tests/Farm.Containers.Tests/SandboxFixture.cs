using System.Diagnostics;
using Farm.Worker.Sandbox;

using Farm.Oci.IO;

using Farm.Testing;

namespace Farm.Worker.Tests;

/// <summary>
/// A busybox root file system (the base "layer"), a snapshotter and a runner under one short temporary root,
/// checked against the real runc. Missing tools fail the tests with how to install them.
/// </summary>
public sealed class SandboxFixture : IDisposable
{
    public SandboxFixture()
    {
        RequireTool("runc", "--version", "runc is required for the sandbox tests: apt-get install runc");
        if (!File.Exists("/bin/busybox"))
        {
            throw new InvalidOperationException("/bin/busybox is required to build the test image: apt-get install busybox-static");
        }

        Root = Path.Combine("/tmp", "fw" + Guid.NewGuid().ToString("N")[..6]);
        BaseLayer = Path.Combine(Root, "layers", "busybox");
        BuildBusyboxLayer(BaseLayer);
        Snapshotter = new OverlaySnapshotter(Path.Combine(Root, "ov"));
        Runner = new RuncRunner(new RuncRunnerOptions { StateDirectory = Path.Combine(Root, "state") });
    }

    public string Root { get; }

    /// <summary>busybox in /bin and applet links, /etc/passwd (root, app 1000), /etc/group, /etc/motd, /home/app; no /proc, /dev, /sys, /etc/hosts.</summary>
    public string BaseLayer { get; }

    public OverlaySnapshotter Snapshotter { get; }

    public RuncRunner Runner { get; }

    /// <summary>Runs <paramref name="args"/> in <paramref name="snapshot"/>, collecting output.</summary>
    public async Task<(RunResult Result, List<OutputLine> Output)> RunAsync(
        OverlaySnapshot snapshot,
        string[] args,
        Func<RunSpec, RunSpec>? configure = null,
        CancellationToken cancellationToken = default)
    {
        var output = new List<OutputLine>();
        var spec = new RunSpec { Args = args, RootfsPath = snapshot.MergedDir, UpperDir = snapshot.UpperDir };
        spec = configure?.Invoke(spec) ?? spec;
        var result = await Runner.RunAsync(spec, (line, _) =>
        {
            output.Add(line);
            return ValueTask.CompletedTask;
        }, cancellationToken);
        return (result, output);
    }

    public static string Stdout(IEnumerable<OutputLine> output) =>
        string.Join('\n', output.Where(l => l.Stream == OutputStream.Stdout).Select(l => l.Text));

    /// <summary>Mount points in this process's namespace that lie under <paramref name="path"/>.</summary>
    public static List<string> MountsUnder(string path) => Mounts.Under(path);

    public void Dispose()
    {
        // Leave nothing mounted even when a test failed half-way.
        foreach (var mount in MountsUnder(Root).OrderByDescending(m => m.Length))
        {
            Native.Umount2(mount, Native.MntDetach);
        }

        Directory.Delete(Root, recursive: true);
    }

    internal static void BuildBusyboxLayer(string dir)
    {
        Directory.CreateDirectory(Path.Combine(dir, "bin"));
        File.Copy("/bin/busybox", Path.Combine(dir, "bin", "busybox"));
        foreach (var applet in RequireTool("/bin/busybox", "--list-full", "busybox --list-full failed").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var link = Path.Combine(dir, applet.Trim());
            if (applet.Trim() == "bin/busybox" || File.Exists(link))
            {
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, "/bin/busybox");
        }

        Directory.CreateDirectory(Path.Combine(dir, "etc"));
        File.WriteAllText(Path.Combine(dir, "etc", "passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        File.WriteAllText(Path.Combine(dir, "etc", "group"),
            "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n");
        File.WriteAllText(Path.Combine(dir, "etc", "motd"), "lower\n");
        Directory.CreateDirectory(Path.Combine(dir, "home", "app"));
        UnixFile.Lchown(Path.Combine(dir, "home", "app"), 1000, 1000);
        Directory.CreateDirectory(Path.Combine(dir, "root"));
    }

    private static string RequireTool(string file, string arg, string message)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, arg) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? output : throw new InvalidOperationException($"{message} ('{file} {arg}' exited {p.ExitCode})");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(message, e);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SandboxCollection : ICollectionFixture<SandboxFixture>
{
    public const string Name = "sandbox";
}
