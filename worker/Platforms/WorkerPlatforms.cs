using Farm.Contracts;

namespace Farm.Worker.Platforms;

/// <summary>A platform a worker runs steps for, and whether it runs them through an emulator.</summary>
/// <param name="Name">The platform, <c>os/arch[/variant]</c>, normalized as <see cref="Oci.Platform.TryParse"/> does.</param>
/// <param name="Emulated">Run through qemu-user-static (binfmt_misc), not natively.</param>
public sealed record WorkerPlatform(string Name, bool Emulated);

/// <summary>
/// The platforms a worker runs (docs/architecture.md, "Platforms"): its machine's own, and every one whose qemu
/// handler binfmt_misc has registered with flag F (the kernel opens the interpreter once, at registration, so it runs
/// inside a runc container whose root lacks it; without F the step would fail with "no such file"). An operator narrows
/// them with <c>Farm:Worker:Platforms</c> (e.g. a worker told it runs only linux/amd64).
/// </summary>
public sealed class WorkerPlatforms
{
    /// <summary>Where the kernel lists binfmt_misc handlers.</summary>
    public const string BinfmtDirectory = "/proc/sys/fs/binfmt_misc";

    // qemu-user-static's handler names (Debian's /usr/lib/binfmt.d/qemu-*.conf) and the platform each runs.
    private static readonly Dictionary<string, string> QemuHandlers = new(StringComparer.Ordinal)
    {
        ["qemu-aarch64"] = "linux/arm64",
        ["qemu-x86_64"] = "linux/amd64",
        ["qemu-arm"] = "linux/arm/v7",
        ["qemu-riscv64"] = "linux/riscv64",
        ["qemu-ppc64le"] = "linux/ppc64le",
        ["qemu-s390x"] = "linux/s390x",
        ["qemu-i386"] = "linux/386",
    };

    public WorkerPlatforms(IReadOnlyList<WorkerPlatform> all)
    {
        ArgumentNullException.ThrowIfNull(all);
        All = all;
    }

    /// <summary>The platforms, native first.</summary>
    public IReadOnlyList<WorkerPlatform> All { get; }

    /// <summary>Whether the worker runs steps for <paramref name="platform"/> (null: <see cref="FarmPlatforms.Default"/>).</summary>
    public bool Runs(string? platform) => Find(platform) is not null;

    /// <summary>Whether the worker runs <paramref name="platform"/>'s steps through an emulator.</summary>
    public bool IsEmulated(string? platform) => Find(platform)?.Emulated == true;

    private WorkerPlatform? Find(string? platform)
    {
        var name = Oci.Platform.TryParse(platform ?? FarmPlatforms.Default)?.ToString() ?? platform;
        return All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.Ordinal));
    }

    /// <summary>
    /// The platforms this machine runs: <see cref="FarmPlatforms.Native"/> and the qemu handlers registered with flag F
    /// in <paramref name="binfmtDirectory"/>; with <paramref name="configured"/> (not empty), those only, in its order.
    /// </summary>
    /// <exception cref="InvalidWorkerPlatformException">A configured platform is malformed, or neither native nor emulated here (FARM3131).</exception>
    public static WorkerPlatforms Detect(IReadOnlyList<string>? configured, string binfmtDirectory = BinfmtDirectory)
    {
        var available = new List<WorkerPlatform> { new(FarmPlatforms.Native, Emulated: false) };
        foreach (var (handler, platform) in QemuHandlers)
        {
            if (platform != FarmPlatforms.Native && IsRegisteredWithF(Path.Combine(binfmtDirectory, handler)))
            {
                available.Add(new WorkerPlatform(platform, Emulated: true));
            }
        }

        if (configured is null || configured.Count == 0)
        {
            return new WorkerPlatforms(available);
        }

        var chosen = new List<WorkerPlatform>();
        foreach (var text in configured)
        {
            var name = Oci.Platform.TryParse(text)?.ToString()
                ?? throw new InvalidWorkerPlatformException($"Farm:Worker:Platforms has '{text}', which is not a platform: write os/arch[/variant], e.g. linux/amd64.");
            var platform = available.FirstOrDefault(p => p.Name == name)
                ?? throw new InvalidWorkerPlatformException($"Farm:Worker:Platforms names {name}, which this machine runs neither natively ({FarmPlatforms.Native}) nor through a qemu handler with flag F in {binfmtDirectory}: install qemu-user-static (infra/install.sh) or leave {name} out.");
            if (!chosen.Contains(platform))
            {
                chosen.Add(platform);
            }
        }

        return new WorkerPlatforms(chosen);
    }

    /// <summary>Whether a binfmt_misc handler file says <c>enabled</c> and has flag F (fix binary).</summary>
    internal static bool IsRegisteredWithF(string handler)
    {
        try
        {
            var lines = File.ReadAllLines(handler);
            return lines.Length > 0 && lines[0].Trim() == "enabled"
                && lines.Any(l => l.StartsWith("flags:", StringComparison.Ordinal) && l["flags:".Length..].Contains('F', StringComparison.Ordinal));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}

/// <summary><c>Farm:Worker:Platforms</c> names something this worker cannot run (FARM3131).</summary>
public sealed class InvalidWorkerPlatformException(string message)
    : FarmException(FarmErrorCodes.InvalidWorkerPlatform, message);

/// <summary>A job reached a worker that does not run its platform (FARM3130).</summary>
public sealed class PlatformNotRunException(string platform, string worker, IEnumerable<string> platforms)
    : FarmException(FarmErrorCodes.PlatformNotRun, $"Worker {worker} does not run {platform} steps (it runs {string.Join(", ", platforms)}): the job was routed to it by mistake; the coordinator sends {platform} jobs to the queue {FarmPlatforms.QueueName(platform)}, which only workers that run it consume.")
{
    public string Platform { get; } = platform;
}
