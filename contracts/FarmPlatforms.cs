using System.Runtime.InteropServices;

namespace Farm.Contracts;

/// <summary>
/// The platforms of a farm (docs/architecture.md, "Platforms"): linux/amd64 is the default one, whose jobs go to the
/// farm's queue as they always did; every other platform has a queue of its own, consumed only by workers that run it.
/// </summary>
public static class FarmPlatforms
{
    /// <summary>What a build without <c>--platform</c> builds for, and what a job without a platform runs on.</summary>
    public const string Default = "linux/amd64";

    /// <summary>The platform this process's machine runs natively (<c>os/arch</c>), as OCI names architectures.</summary>
    public static string Native { get; } = "linux/" + RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        Architecture.X86 => "386",
        Architecture.Arm => "arm",
        Architecture.S390x => "s390x",
        Architecture.Ppc64le => "ppc64le",
        Architecture.RiscV64 => "riscv64",
        Architecture.LoongArch64 => "loong64",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// The queue of one platform's jobs, <c>farm-build-layer-linux-arm64</c> (the platform with <c>/</c> as <c>-</c>):
    /// never the name of a worker's own queue (<c>farm-build-layer.NAME</c>).
    /// </summary>
    public static string QueueName(string platform)
    {
        ArgumentException.ThrowIfNullOrEmpty(platform);
        return "farm-build-layer-" + string.Concat(platform.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-'));
    }
}
