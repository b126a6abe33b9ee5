using System.Text.Json;
using Farm.Containers.Sandbox;

namespace Farm.Containers.Tests;

public sealed class RuntimeSpecGeneratorTests
{
    private static readonly RuntimeSpecGenerator.NetworkFiles Files = new("/state/b/resolv.conf", "/state/b/hosts");

    private static RuntimeSpec Generate(RunSpec? run = null, ResolvedUser? user = null) =>
        RuntimeSpecGenerator.Generate(
            // Host: a private network (the default) needs a namespace the runner creates.
            run ?? new RunSpec { Args = ["sh", "-c", "true"], RootfsPath = "/ov/s/x/m", Network = NetworkMode.Host },
            user ?? new ResolvedUser(0, 0, [], "/root"),
            Files);

    [Fact]
    public void Host_network_shares_the_network_namespace_and_none_gets_its_own()
    {
        Assert.Equal(["pid", "ipc", "uts", "mount"], Generate().Linux.Namespaces.Select(n => n.Type));
        Assert.Contains("network", Generate(new RunSpec { Args = ["true"], RootfsPath = "/r", Network = NetworkMode.None }).Linux.Namespaces.Select(n => n.Type));
    }

    [Fact]
    public void The_process_gets_docker_defaults()
    {
        var spec = Generate();

        Assert.False(spec.Process.Terminal);
        Assert.True(spec.Process.NoNewPrivileges);
        Assert.False(spec.Root.Readonly);
        Assert.Equal(14, spec.Process.Capabilities!.Bounding.Count);
        Assert.Contains("CAP_NET_BIND_SERVICE", spec.Process.Capabilities.Effective);
        Assert.DoesNotContain("CAP_SYS_ADMIN", spec.Process.Capabilities.Bounding);
        Assert.Contains("/proc/kcore", spec.Linux.MaskedPaths);
        Assert.Contains("/proc/sys", spec.Linux.ReadonlyPaths);
    }

    [Fact]
    public void A_non_root_user_starts_without_effective_capabilities()
    {
        var spec = Generate(user: new ResolvedUser(1000, 1000, [50], "/home/app"));

        Assert.Empty(spec.Process.Capabilities!.Effective);
        Assert.Equal(new RuntimeUser(1000, 1000, null).Uid, spec.Process.User.Uid);
        Assert.Equal([50u], spec.Process.User.AdditionalGids!);
    }

    [Fact]
    public void Step_limits_become_linux_resources_in_the_given_cgroup_and_none_means_none()
    {
        var run = new RunSpec
        {
            Args = ["true"],
            RootfsPath = "/r",
            Network = NetworkMode.Host,
            Limits = new StepLimits { MemoryBytes = 256L << 20, Pids = 64, Cpus = 1.5, Timeout = TimeSpan.FromMinutes(5) },
        };

        var spec = RuntimeSpecGenerator.Generate(run, new ResolvedUser(0, 0, [], "/root"), Files, "/farm-steps/farm-1/step");
        var json = JsonDocument.Parse(JsonSerializer.Serialize(spec, RuntimeSpecJsonContext.Default.RuntimeSpec)).RootElement.GetProperty("linux");

        Assert.Equal("/farm-steps/farm-1/step", json.GetProperty("cgroupsPath").GetString());
        var resources = json.GetProperty("resources");
        Assert.Equal(64, resources.GetProperty("pids").GetProperty("limit").GetInt64());
        Assert.Equal(150_000, resources.GetProperty("cpu").GetProperty("quota").GetInt64());
        Assert.Equal(100_000, resources.GetProperty("cpu").GetProperty("period").GetInt64());
        // The step cgroup holds the exact limit; the container's own sits just above it (RuntimeSpecGenerator.MemoryHeadroom).
        Assert.Equal((256L << 20) + (2L << 20), resources.GetProperty("memory").GetProperty("limit").GetInt64());

        var unlimited = JsonDocument.Parse(JsonSerializer.Serialize(Generate(), RuntimeSpecJsonContext.Default.RuntimeSpec)).RootElement.GetProperty("linux");
        Assert.False(unlimited.TryGetProperty("cgroupsPath", out _));
        Assert.False(unlimited.GetProperty("resources").TryGetProperty("memory", out _));
        Assert.False(unlimited.GetProperty("resources").TryGetProperty("pids", out _));
    }

    [Theory]
    [InlineData(256L << 20, "256 MiB")]
    [InlineData(3L << 29, "1.5 GiB")]
    [InlineData(1000, "1000 B")]
    public void Limits_are_shown_in_binary_units(long bytes, string shown) => Assert.Equal(shown, StepLimits.FormatBytes(bytes));

    [Fact]
    public void Rlimits_never_exceed_the_workers_hard_limits()
    {
        var hostHard = ulong.Parse(File.ReadLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[4]);

        var nofile = Assert.Single(Generate().Process.Rlimits, r => r.Type == "RLIMIT_NOFILE");

        Assert.True(nofile.Hard <= hostHard, $"hard {nofile.Hard} > host {hostHard}");
        Assert.True(nofile.Soft <= nofile.Hard);
    }

    [Fact]
    public void Kernel_file_systems_are_mounted_and_sys_is_read_only()
    {
        var mounts = Generate().Mounts.ToDictionary(m => m.Destination);

        Assert.Equal(["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/etc/resolv.conf", "/etc/hosts"], mounts.Keys);
        Assert.Contains("ro", mounts["/sys"].Options);
        Assert.Contains("ro", mounts["/sys/fs/cgroup"].Options);
        Assert.Equal(("bind", Files.Hosts), (mounts["/etc/hosts"].Type, mounts["/etc/hosts"].Source));
        Assert.Contains("ro", mounts["/etc/resolv.conf"].Options);
    }

    [Fact]
    public void Env_gets_path_hostname_and_home_unless_the_step_sets_them()
    {
        var run = new RunSpec { Args = ["true"], RootfsPath = "/r", Env = ["HOME=/custom", "A=1"], Hostname = "box" };

        var env = RuntimeSpecGenerator.BuildEnv(run, new ResolvedUser(1000, 1000, [], "/home/app"));

        Assert.Equal(["PATH=" + RuntimeSpecGenerator.DefaultPath, "HOME=/custom", "A=1", "HOSTNAME=box"], env);
    }

    [Fact]
    public void Config_json_uses_the_spec_names()
    {
        var json = JsonSerializer.Serialize(Generate(), RuntimeSpecJsonContext.Default.RuntimeSpec);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;

        Assert.Equal("1.0.2", root.GetProperty("ociVersion").GetString());
        Assert.True(root.GetProperty("process").GetProperty("noNewPrivileges").GetBoolean());
        Assert.Equal("/ov/s/x/m", root.GetProperty("root").GetProperty("path").GetString());
        Assert.True(root.GetProperty("linux").TryGetProperty("maskedPaths", out _));
        Assert.False(root.GetProperty("process").GetProperty("user").TryGetProperty("additionalGids", out _));
    }

    [Fact]
    public void Hosts_names_localhost_and_the_hostname()
    {
        var hosts = RuntimeSpecGenerator.HostsFileContent("box");

        Assert.Contains("127.0.0.1\tlocalhost", hosts);
        Assert.Contains("\tbox\n", hosts);
    }
}
