using Farm.Containers.Sandbox;

namespace Farm.Containers.Tests;

/// <summary>
/// RUN steps over their memory, pids and time limits, against the real runc and this machine's cgroups: each fails
/// with the code of the limit it hit, and the same runner runs the next step as if nothing happened.
/// </summary>
[Collection(SandboxCollection.Name)]
public sealed class StepLimitsTests(SandboxFixture fx)
{
    private static Func<RunSpec, RunSpec> With(StepLimits limits) => spec => spec with { Network = NetworkMode.None, Limits = limits };

    [Fact]
    public async Task A_2_GiB_allocation_under_256_MiB_fails_with_the_memory_limit_and_the_next_step_runs()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        // tail keeps the whole (newline-free) input in memory: a 2 GiB allocation.
        var e = await Assert.ThrowsAsync<StepMemoryLimitException>(() => fx.RunAsync(
            snap,
            ["sh", "-c", "echo allocating; head -c 2147483648 /dev/zero | tail > /dev/null"],
            With(new StepLimits { MemoryBytes = 256L << 20 })));

        Assert.Equal("FARM3020", e.Code);
        Assert.Contains("exceeded its memory limit of 256 MiB", e.Message);
        Assert.Contains("Farm:Worker:StepLimits:Memory", e.Message);
        Assert.Equal(137, e.ExitCode);
        Assert.Contains(e.OutputTail, l => l.Text == "allocating");
        await AssertTheRunnerStillWorksAsync(snap);
    }

    [Fact]
    public async Task Page_cache_beyond_the_memory_limit_is_reclaimed_not_reported_as_out_of_memory()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        // 96 MiB of files under a 32 MiB limit: the limit is hit again and again, but reclaim copes and nobody is killed.
        var (result, output) = await fx.RunAsync(
            snap,
            ["sh", "-c", "dd if=/dev/zero of=/big bs=1048576 count=96 2>/dev/null && wc -c < /big && rm /big"],
            With(new StepLimits { MemoryBytes = 32L << 20 }));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal((96L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), SandboxFixture.Stdout(output).Trim());
    }

    [Fact]
    public async Task A_command_that_fails_within_its_limits_is_an_ordinary_run_failure()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var e = await Assert.ThrowsAsync<RunFailedException>(() => fx.RunAsync(
            snap,
            ["sh", "-c", "sleep 0 & sleep 0 & wait; exit 7"],
            With(new StepLimits { MemoryBytes = 64L << 20, Pids = 64, Cpus = 1, Timeout = TimeSpan.FromMinutes(5) })));

        Assert.Equal("FARM3002", e.Code);
        Assert.Equal(7, e.ExitCode);
    }

    [Theory]
    // The shell gives up at the first failed fork: caught when the step ends.
    [InlineData("while :; do sleep 600 & done")]
    // A classic bomb while the first process waits: the sandbox stops it, it would never end.
    [InlineData("bomb() { bomb | bomb & }; bomb; sleep 600")]
    public async Task A_fork_bomb_fails_with_the_pids_limit_and_the_next_step_runs(string bomb)
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var e = await Assert.ThrowsAsync<StepPidsLimitException>(() => fx.RunAsync(
            snap,
            ["sh", "-c", bomb],
            // The timeout is a backstop only: the test must not pass by running into it.
            With(new StepLimits { Pids = 64, Timeout = TimeSpan.FromMinutes(5) })));

        Assert.Equal("FARM3021", e.Code);
        Assert.Contains("reached its limit of 64 processes", e.Message);
        Assert.Contains("Farm:Worker:StepLimits:Pids", e.Message);
        await AssertTheRunnerStillWorksAsync(snap);
    }

    [Fact]
    public async Task A_step_over_its_time_limit_is_killed_and_fails_with_the_timeout()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var e = await Assert.ThrowsAsync<StepTimeoutException>(() => fx.RunAsync(
            snap,
            ["sh", "-c", "echo started; sleep 600"],
            With(new StepLimits { Timeout = TimeSpan.FromSeconds(1) })));

        Assert.Equal("FARM3022", e.Code);
        Assert.Contains("ran longer than its time limit of 1 s", e.Message);
        Assert.Null(e.ExitCode);
        Assert.Contains(e.OutputTail, l => l.Text == "started");
        await AssertTheRunnerStillWorksAsync(snap);
    }

    [Fact]
    public async Task The_step_sees_its_cpu_and_memory_limits_in_its_own_cgroup()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (_, output) = await fx.RunAsync(
            snap,
            ["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max; " +
                         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"],
            With(new StepLimits { Cpus = 0.5, MemoryBytes = 128L << 20 }));

        var lines = SandboxFixture.Stdout(output).Split('\n');
        Assert.Equal("50000", lines[0]);
        Assert.Equal(((128L << 20) + RuntimeSpecGenerator.MemoryHeadroom).ToString(System.Globalization.CultureInfo.InvariantCulture), lines[1]);
    }

    private async Task AssertTheRunnerStillWorksAsync(Snapshots.OverlaySnapshot snap)
    {
        Assert.Empty(await fx.Runner.ListContainersAsync(CancellationToken.None));
        var (result, output) = await fx.RunAsync(snap, ["sh", "-c", "echo next"], With(new StepLimits { MemoryBytes = 256L << 20, Pids = 64 }));
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("next", SandboxFixture.Stdout(output));
    }
}
