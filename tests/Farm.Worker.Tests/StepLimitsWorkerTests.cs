using Farm.Containers.Sandbox;
using Farm.Contracts;
using Farm.Worker.Jobs;

namespace Farm.Worker.Tests;

/// <summary>
/// The worker's step limits (<c>Farm:Worker:StepLimits</c>) on BuildLayer jobs through <see cref="LayerJobExecutor"/>,
/// against the real registry, overlayfs and runc: a step over a limit fails with that limit's code, is not retried
/// elsewhere, and the same executor builds the next job.
/// </summary>
[Collection(ExecutorCollection.Name)]
public sealed class StepLimitsWorkerTests(ExecutorFixture fx)
{
    private LayerJobExecutor NewExecutor(StepLimitsOptions limits) =>
        new(new WorkerOptions { Name = "limits", StateDirectory = Path.Combine(fx.Root, "limits-" + Guid.NewGuid().ToString("N")[..6]), StepLimits = limits }, fx.Stores);

    [Fact]
    public async Task A_fork_bomb_and_a_memory_hog_fail_with_their_limits_and_the_next_job_on_that_executor_builds()
    {
        using var executor = NewExecutor(new StepLimitsOptions { Memory = "256MiB", Pids = 64, Timeout = TimeSpan.FromMinutes(5) });

        var bomb = await Assert.ThrowsAsync<StepPidsLimitException>(
            () => fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("bomb() { bomb | bomb & }; bomb; sleep 600")), executor));
        var hog = await Assert.ThrowsAsync<StepMemoryLimitException>(
            () => fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("head -c 2147483648 /dev/zero | tail > /dev/null")), executor));
        var (next, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("echo built > /after-limits; cat /after-limits")), executor);

        Assert.Equal(FarmErrorCodes.StepPidsLimit, bomb.Code);
        Assert.Contains("reached its limit of 64 processes", bomb.Message);
        Assert.Equal(FarmErrorCodes.StepMemoryLimit, hog.Code);
        Assert.Contains("exceeded its memory limit of 256 MiB", hog.Message);
        // A step over its limit fails the same everywhere: not retried on another worker.
        Assert.False(BuildLayerConsumer.IsRetryable(bomb));
        Assert.False(BuildLayerConsumer.IsRetryable(hog));
        Assert.NotNull(next.Layer);
        Assert.Equal(["built"], output);
        Assert.Contains(await fx.ReadLayerAsync(next.Layer!), e => e.Name == "after-limits" && e.Content == "built\n");
    }

    [Fact]
    public async Task A_step_over_the_default_timeout_is_killed_and_fails_with_the_timeout()
    {
        using var executor = NewExecutor(new StepLimitsOptions { Timeout = TimeSpan.FromSeconds(1) });

        var e = await Assert.ThrowsAsync<StepTimeoutException>(() => fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("sleep 600")), executor));

        Assert.Equal(FarmErrorCodes.StepTimeout, e.Code);
        Assert.Contains("time limit of 1 s", e.Message);
        Assert.Contains("Farm:Worker:StepLimits:Timeout", e.Message);
        Assert.False(BuildLayerConsumer.IsRetryable(e));
        var (next, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("echo ok > /ok")), executor);
        Assert.NotNull(next.Layer);
    }

    [Fact]
    public async Task A_build_may_ask_for_limits_within_the_caps_and_is_refused_above_them()
    {
        using var executor = NewExecutor(new StepLimitsOptions { Memory = "256MiB", MaxMemory = "512MiB", Pids = 64, MaxPids = 128 });

        var refused = await Assert.ThrowsAsync<StepLimitAboveCapException>(() => fx.ExecuteAsync(
            fx.Job(ExecutorFixture.Run("true", r => r with { Limits = new StepLimitRequest { MemoryBytes = 2L << 30 } })), executor));
        // Asked for 100 processes (above the default of 64, within the cap): 80 sleeping children fit.
        var (_, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(
            "i=0; while [ $i -lt 80 ]; do sleep 600 & i=$((i+1)); done; echo started $i; kill $(jobs -p)",
            r => r with { Limits = new StepLimitRequest { Pids = 100 } })), executor);

        Assert.Equal(FarmErrorCodes.StepLimitAboveCap, refused.Code);
        Assert.Contains("2 GiB of memory", refused.Message);
        Assert.Contains("cap of 512 MiB", refused.Message);
        Assert.Equal(["started 80"], output);
    }
}
