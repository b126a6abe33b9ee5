using System.Diagnostics;
using Farm.Containers.Sandbox;
using Farm.Containers.Snapshots;

using Farm.Testing;

namespace Farm.Containers.Tests;

/// <summary>
/// A busybox root file system (the base "layer"), a snapshotter and a runner under one short temporary root,
/// checked against the real runc. Missing tools fail the tests with how to install them.
/// </summary>
public sealed class SandboxFixture : IDisposable
{
    public SandboxFixture()
    {
        RequireTool("runc", "--version", "runc is required for the sandbox tests: apt-get install runc");
        Root = Path.Combine("/tmp", "fw" + Guid.NewGuid().ToString("N")[..6]);
        BaseLayer = Path.Combine(Root, "layers", "busybox");
        BusyboxLayer.Build(BaseLayer);
        Snapshotter = new OverlaySnapshotter(Path.Combine(Root, "ov"));
        // A group of its own, so that this fixture's chain is not the one of a worker another test runs meanwhile.
        Firewall = new SandboxFirewall(60000 + Random.Shared.Next(4000), []);
        Runner = new SandboxRunner(new SandboxRunnerOptions { StateDirectory = Path.Combine(Root, "state"), Firewall = Firewall });
    }

    /// <summary>The fence of the runner's private networks, as a worker has it (removed with the fixture).</summary>
    public SandboxFirewall Firewall { get; }

    public string Root { get; }

    /// <summary>busybox in /bin and applet links, /etc/passwd (root, app 1000), /etc/group, /etc/motd, /home/app; no /proc, /dev, /sys, /etc/hosts.</summary>
    public string BaseLayer { get; }

    public OverlaySnapshotter Snapshotter { get; }

    public SandboxRunner Runner { get; }

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
        Runner.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Firewall.RemoveAsync(CancellationToken.None).GetAwaiter().GetResult();
        Firewall.Dispose();
        // Leave nothing mounted even when a test failed half-way.
        foreach (var mount in MountsUnder(Root).OrderByDescending(m => m.Length))
        {
            MountPoints.Detach(mount);
        }

        Directory.Delete(Root, recursive: true);
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
