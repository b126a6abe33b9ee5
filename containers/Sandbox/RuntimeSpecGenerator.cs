using Farm.Oci.Layers;

namespace Farm.Containers.Sandbox;

/// <summary>
/// Builds the OCI runtime config for a RUN step with Docker's defaults: new pid, ipc, uts and mount namespaces
/// (and network for <see cref="NetworkMode.None"/>), Docker's default capabilities, no_new_privileges, masked
/// and read-only kernel paths, rlimits capped by the worker's own hard limits.
/// See <see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md">runtime-spec config.md</see>.
/// </summary>
public static class RuntimeSpecGenerator
{
    /// <summary>PATH when the step's env has none, as Docker sets it.</summary>
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Docker's default capability set for containers.</summary>
    public static IReadOnlyList<string> DefaultCapabilities { get; } =
    [
        "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
        "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
    ];

    // Kernel interfaces that leak host information or allow host changes; the lists Docker uses.
    private static readonly string[] MaskedPaths =
    [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    // What a build step may ask for at most; the worker's own hard limit lowers it (runc cannot raise it without
    // CAP_SYS_RESOURCE, and a step must not get more than the worker was given).
    private const ulong WantedNoFile = 1048576;

    /// <summary>Where the generated /etc/resolv.conf and /etc/hosts live on the host.</summary>
    /// <param name="ResolvConf">Host path bind-mounted read-only on /etc/resolv.conf.</param>
    /// <param name="Hosts">Host path bind-mounted read-only on /etc/hosts.</param>
    public sealed record NetworkFiles(string ResolvConf, string Hosts);

    /// <summary>The container paths the sandbox mounts on, standard ones first; the stubs runc may create for them.</summary>
    public static IReadOnlyList<string> MountDestinations(RuntimeSpec spec) => spec.Mounts.Select(m => m.Destination).ToList();

    /// <summary>The CFS period step CPU limits are expressed in (100 ms, the kernel's and Docker's default).</summary>
    public const ulong CpuPeriodMicroseconds = 100_000;

    /// <summary>
    /// Generates the runtime config for <paramref name="run"/> executing as <paramref name="user"/>; with
    /// <paramref name="cgroupsPath"/>, the container's cgroup goes there (the sandbox's step cgroup, which holds the
    /// memory limit) and <see cref="RunSpec.Limits"/> go into <c>linux.resources</c> (memory with <see cref="MemoryHeadroom"/>).
    /// </summary>
    public static RuntimeSpec Generate(RunSpec run, ResolvedUser user, NetworkFiles networkFiles, string? cgroupsPath = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(networkFiles);
        if (run.Args.Count == 0)
        {
            throw new ArgumentException("A RUN needs at least one argument.", nameof(run));
        }

        var namespaces = new List<RuntimeNamespace> { new("pid"), new("ipc"), new("uts"), new("mount") };
        if (run.Network == NetworkMode.None)
        {
            // runc brings up loopback in a network namespace it creates without a path.
            namespaces.Add(new("network"));
        }
        else if (run.Network == NetworkMode.Private)
        {
            namespaces.Add(new("network", run.NetworkNamespacePath ?? throw new ArgumentException("A private network needs the namespace to join (NetworkNamespacePath).", nameof(run))));
        }

        var isRoot = user.Uid == 0;
        return new RuntimeSpec
        {
            Process = new RuntimeProcess
            {
                Terminal = false,
                User = new RuntimeUser(user.Uid, user.Gid, user.AdditionalGids.Count > 0 ? user.AdditionalGids : null),
                Args = run.Args,
                Env = BuildEnv(run, user),
                Cwd = NormalizeCwd(run.WorkingDirectory),
                // Like Docker, a non-root user keeps the bounding set but starts without effective capabilities.
                Capabilities = new RuntimeCapabilities(DefaultCapabilities, isRoot ? DefaultCapabilities : [], isRoot ? DefaultCapabilities : []),
                Rlimits = Rlimits(run.Ulimits),
                NoNewPrivileges = true,
            },
            Root = new RuntimeRoot(run.RootfsPath, Readonly: false),
            Hostname = run.Hostname,
            Mounts = BuildMounts(run, networkFiles),
            Linux = new RuntimeLinux
            {
                Namespaces = namespaces,
                MaskedPaths = MaskedPaths,
                ReadonlyPaths = ReadonlyPaths,
                // Deny all devices; runc adds its default allow-list (null, zero, full, random, urandom, tty, ptmx).
                Resources = new RuntimeResources(
                    [new RuntimeDeviceRule(false, "rwm")],
                    run.Limits.Pids is { } pids ? new RuntimePids(pids) : null,
                    run.Limits.Cpus is { } cpus ? new RuntimeCpu(CpuQuota(cpus), CpuPeriodMicroseconds) : null,
                    run.Limits.MemoryBytes is { } memory ? new RuntimeMemory(memory + MemoryHeadroom) : null),
                CgroupsPath = cgroupsPath,
            },
        };
    }

    /// <summary>The environment the process gets: the step's env plus PATH, HOSTNAME and HOME when absent.</summary>
    public static IReadOnlyList<string> BuildEnv(RunSpec run, ResolvedUser user)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(user);
        var env = new List<string>(run.Env);
        bool Has(string key) => env.Any(e => e.StartsWith(key + "=", StringComparison.Ordinal));
        if (!Has("PATH"))
        {
            env.Insert(0, "PATH=" + DefaultPath);
        }

        if (!Has("HOSTNAME"))
        {
            env.Add("HOSTNAME=" + run.Hostname);
        }

        if (!Has("HOME"))
        {
            env.Add("HOME=" + user.Home);
        }

        return env;
    }

    /// <summary>The /etc/hosts a sandbox gets: loopback names and its own hostname.</summary>
    public static string HostsFileContent(string hostname) =>
        $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n";

    /// <summary>
    /// The /etc/hosts a sandbox gets with <paramref name="extraHosts"/> (<c>HOST:IP</c>, as <c>--add-host</c>) after
    /// its own lines, as docker writes them: <c>IP\tHOST</c>. An IPv6 address keeps its colons (the host is before the first).
    /// </summary>
    public static string HostsFileContent(string hostname, IReadOnlyList<string> extraHosts)
    {
        ArgumentNullException.ThrowIfNull(extraHosts);
        var text = new System.Text.StringBuilder(HostsFileContent(hostname));
        foreach (var entry in extraHosts)
        {
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                text.Append(entry.AsSpan(colon + 1)).Append('\t').Append(entry.AsSpan(0, colon)).Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// How far above the step's memory limit the container's own cgroup is limited. The step cgroup it nests in holds
    /// the real limit (its OOM events are what the sandbox reads); the container's cgroup carries one too so that
    /// runtimes which size their heaps from their own cgroup (JVM, .NET, Node) see it, and a hair more, the largest
    /// page the kernel charges at once (a 2 MiB huge page), so the step cgroup is always the one to run out first.
    /// </summary>
    public const long MemoryHeadroom = 2L << 20;

    /// <summary>The CFS quota for <paramref name="cpus"/> CPUs per <see cref="CpuPeriodMicroseconds"/>; the kernel's minimum is 1 ms.</summary>
    internal static long CpuQuota(double cpus) => Math.Max(1000, (long)Math.Round(cpus * CpuPeriodMicroseconds));

    internal static string NormalizeCwd(string cwd) => "/" + string.Join('/', RootfsPath.Split(cwd));

    private static RuntimeRlimit NoFileLimit()
    {
        var (_, hostHard) = Interop.GetRlimit(Interop.RlimitNoFile);
        var limit = Math.Min(WantedNoFile, hostHard);
        return new RuntimeRlimit("RLIMIT_NOFILE", limit, limit);
    }

    /// <summary>The setrlimit(2) resource numbers of Linux on x86-64 and arm64, by docker's <c>--ulimit</c> names.</summary>
    internal static readonly IReadOnlyDictionary<string, int> RlimitResources = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["cpu"] = 0, ["fsize"] = 1, ["data"] = 2, ["stack"] = 3, ["core"] = 4, ["rss"] = 5, ["nproc"] = 6, ["nofile"] = 7,
        ["memlock"] = 8, ["as"] = 9, ["locks"] = 10, ["sigpending"] = 11, ["msgqueue"] = 12, ["nice"] = 13, ["rtprio"] = 14,
        ["rttime"] = 15,
    };

    /// <summary>
    /// The sandbox's nofile default, replaced or joined by <paramref name="ulimits"/>. Each is capped at this process's
    /// hard limit: runc could not raise it (it would fail the step), and a build must not get more than its worker has.
    /// </summary>
    /// <exception cref="ArgumentException">A limit names a resource Linux does not have.</exception>
    private static List<RuntimeRlimit> Rlimits(IReadOnlyList<Contracts.Ulimit> ulimits)
    {
        var limits = new List<RuntimeRlimit>();
        if (!ulimits.Any(u => u.Name == "nofile"))
        {
            limits.Add(NoFileLimit());
        }

        foreach (var ulimit in ulimits)
        {
            if (!RlimitResources.TryGetValue(ulimit.Name, out var resource))
            {
                throw new ArgumentException($"--ulimit {ulimit.Name} is not a resource limit Linux knows.", nameof(ulimits));
            }

            var (_, hostHard) = Interop.GetRlimit(resource);
            static ulong Value(long value) => value < 0 ? ulong.MaxValue : (ulong)value;
            var hard = Math.Min(Value(ulimit.Hard), hostHard);
            var soft = Math.Min(Value(ulimit.Soft), hard);
            limits.Add(new RuntimeRlimit("RLIMIT_" + ulimit.Name.ToUpperInvariant(), hard, soft));
        }

        return limits;
    }

    private static List<RuntimeMount> BuildMounts(RunSpec run, NetworkFiles files)
    {
        var mounts = new List<RuntimeMount>
        {
            new("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
            new("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            new("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            new("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", run.ShmSizeBytes is { } shm ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"size={shm}") : "size=65536k"]),
            new("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            new("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            new("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
            new("/etc/resolv.conf", "bind", files.ResolvConf, ["rbind", "ro", "nosuid", "nodev", "noexec"]),
            new("/etc/hosts", "bind", files.Hosts, ["rbind", "ro", "nosuid", "nodev", "noexec"]),
        };

        foreach (var m in run.Mounts)
        {
            mounts.Add(new RuntimeMount(NormalizeCwd(m.Destination), "bind", m.Source, ["rbind", m.ReadOnly ? "ro" : "rw"]));
        }

        foreach (var t in run.Tmpfs)
        {
            // Docker's tmpfs defaults: world-writable with the sticky bit, no set-uid files or devices.
            List<string> options = ["nosuid", "nodev", "mode=1777"];
            if (t.SizeBytes is { } size)
            {
                options.Add("size=" + size.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            mounts.Add(new RuntimeMount(NormalizeCwd(t.Destination), "tmpfs", "tmpfs", options));
        }

        return mounts;
    }
}
