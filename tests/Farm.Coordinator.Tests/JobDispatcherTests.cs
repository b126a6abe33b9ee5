using Farm.Contracts;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Workers;

namespace Farm.Coordinator.Tests;

/// <summary>How cache-affinity dispatch picks a worker from the locality record (the choice alone; AffinityTests runs it).</summary>
public sealed class JobDispatcherTests
{
    private static readonly LayerRef Base = Layer("base", 50_000_000);
    private static readonly LayerRef Small = Layer("small", 1_000);
    private static readonly LayerRef Large = Layer("large", 8_000_000);

    [Fact]
    public void The_worker_holding_the_most_bytes_of_the_inputs_wins_not_the_most_layers()
    {
        var chosen = JobDispatcher.Choose(
            [Worker("a"), Worker("b")],
            [Small, Large],
            [["a"], ["b"]]);

        Assert.Equal("b", chosen?.Name);
    }

    [Fact]
    public void Equal_holdings_go_to_the_worker_with_more_free_slots()
    {
        var chosen = JobDispatcher.Choose(
            [Worker("a", busy: 1), Worker("b", busy: 0), Worker("c")],
            [Base],
            [["a", "b"]]);

        Assert.Equal("b", chosen?.Name);
    }

    [Fact]
    public void No_worker_is_preferred_when_every_one_that_could_take_the_job_holds_its_inputs_alike()
    {
        // Ten builds on one base: once every worker has extracted it, waiting for one of them gains nothing.
        Assert.Null(JobDispatcher.Choose([Worker("a"), Worker("b"), Worker("c")], [Base], [["a", "b", "c"]]));
        // The layer only one of them built still draws the job there.
        Assert.Equal("c", JobDispatcher.Choose([Worker("a"), Worker("b"), Worker("c")], [Base, Small], [["a", "b", "c"], ["c"]])?.Name);
    }

    [Fact]
    public void No_worker_is_preferred_when_no_live_one_holds_an_input()
    {
        // "gone" holds the layer but sends no heartbeats any more.
        Assert.Null(JobDispatcher.Choose([Worker("a"), Worker("b")], [Base], [["gone"]]));
        Assert.Null(JobDispatcher.Choose([Worker("a"), Worker("b")], [Base], [[]]));
    }

    [Fact]
    public void A_copy_from_source_counts_as_an_input_once()
    {
        var step = new LayerStep
        {
            Kind = StepKind.Copy,
            Display = "COPY --from=build /out /out",
            Copy = new CopyStep { Sources = ["/out"], Destination = "/out", From = new CopySource { Layers = [Base, Large] } },
        };

        Assert.Equal([Base, Small, Large], JobDispatcher.Inputs([Base, Small], step));
    }

    [Fact]
    public void A_worker_holding_a_steps_cache_mount_warm_is_preferred_over_one_holding_a_small_parent_and_tenants_caches_are_apart()
    {
        var step = new LayerStep
        {
            Kind = StepKind.Run,
            Display = "RUN --mount=type=cache,target=/root/.npm npm install",
            Run = new RunStep
            {
                Args = ["/bin/sh", "-c", "npm install"],
                Mounts = [new RunStepMount { Type = "cache", Target = "/root/.npm", Tenant = "acme" }, new RunStepMount { Type = "tmpfs", Target = "/tmp" }],
            },
        };

        var inputs = JobDispatcher.Inputs([Small], step);

        // The cache (id: its target) of acme, not of another tenant, weighs as much as 256 MiB of layers.
        Assert.Equal([Small, JobDispatcher.CacheMountInput("acme", "/root/.npm")], inputs);
        Assert.NotEqual(JobDispatcher.CacheMountInput("globex", "/root/.npm").Digest, inputs[1].Digest);
        Assert.Equal("b", JobDispatcher.Choose([Worker("a"), Worker("b")], inputs, [["a"], ["b"]])?.Name);
    }

    private static LayerRef Layer(string name, long size) => new("sha256:" + name, "sha256:diff-" + name, "application/vnd.oci.image.layer.v1.tar+gzip", size);

    private static WorkerView Worker(string name, int busy = 0) =>
        new(name, 1, busy, 0, 0, "1", "host", 0, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, "farm-build-layer." + name);
}
