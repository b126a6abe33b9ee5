using System.Collections.Concurrent;
using Farm.Contracts;
using Farm.Coordinator.Grains;
using Farm.Coordinator.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>Single flight, failures and retries of the layer grain, with the real worker on the in-memory bus.</summary>
[Collection(GrainCollection.Name)]
public sealed class GrainTests(GrainFixture fixture)
{
    [Fact]
    public async Task Ten_concurrent_callers_for_one_key_share_one_job_and_get_the_same_layer()
    {
        var key = LayerStoreFixture.NewKey();
        var grain = fixture.Grains.GetGrain<ILayerGrain>(key);
        var requests = Enumerable.Range(0, 10).Select(_ => fixture.Request("echo single-flight && date +%s%N > /stamp")).ToList();
        var lines = new ConcurrentQueue<StepLogLine>();
        var subscriptions = requests.Select(r => fixture.Logs.Subscribe(r.BuildId, lines.Enqueue)).ToList();
        try
        {
            var outcomes = await Task.WhenAll(requests.Select(r => grain.BuildAsync(r))).WaitAsync(TimeSpan.FromMinutes(3));

            Assert.All(outcomes, o => Assert.True(o.Succeeded, o.Failure?.Message));
            Assert.Single(fixture.JobsFor(key));
            var digest = Assert.IsType<BuiltLayer>(outcomes[0].Success!.Layer).Digest;
            Assert.StartsWith("sha256:", digest, StringComparison.Ordinal);
            Assert.All(outcomes, o => Assert.Equal(digest, o.Success!.Layer!.Digest));
            Assert.Equal("embedded", outcomes[0].Success!.Worker);
            // The job's lines reach the subscribers of the build it ran under.
            await Wait.UntilAsync(() => Task.FromResult(lines.Any(l => l.Line.Contains("single-flight", StringComparison.Ordinal))),
                TimeSpan.FromSeconds(30), () => "the RUN's output line on the log hub");

            // Remembered: a later caller gets the same layer and no job runs.
            var later = await grain.BuildAsync(fixture.Request("echo single-flight && date +%s%N > /stamp"));
            Assert.Equal(digest, later.Success?.Layer?.Digest);
            Assert.Single(fixture.JobsFor(key));
            Assert.Equal(digest, (await grain.GetOutcomeAsync())?.Success?.Layer?.Digest);
        }
        finally
        {
            subscriptions.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_failing_RUN_fails_every_caller_with_its_exit_code_and_output_at_once()
    {
        var key = LayerStoreFixture.NewKey();
        var grain = fixture.Grains.GetGrain<ILayerGrain>(key);
        const string command = "echo about-to-fail && exit 7";

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => grain.BuildAsync(fixture.Request(command)))).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Single(fixture.JobsFor(key));
        Assert.All(outcomes, o =>
        {
            Assert.False(o.Succeeded);
            Assert.Equal(7, o.Failure!.ExitCode);
            Assert.False(o.Failure.Retryable);
            Assert.Contains(o.Failure.OutputTail, l => l.Contains("about-to-fail", StringComparison.Ordinal));
            Assert.Equal(1, o.Attempts);
        });

        // A failure is not remembered: the next build runs the step again.
        var again = await grain.BuildAsync(fixture.Request(command)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(7, again.Failure?.ExitCode);
        Assert.Equal(2, fixture.JobsFor(key).Count);
        Assert.Null(await grain.GetOutcomeAsync());
    }

    [Fact]
    public async Task A_retryable_failure_is_tried_up_to_the_bound_then_fails_naming_the_attempts()
    {
        var key = LayerStoreFixture.NewKey();
        var grain = fixture.Grains.GetGrain<ILayerGrain>(key);
        // Nothing listens on port 1: every attempt fails to fetch the parent layer, a store fault.
        var request = fixture.Request("true", blobStore: $"registry://127.0.0.1:1/{fixture.Store.Repository}");

        var outcome = await grain.BuildAsync(request).WaitAsync(TimeSpan.FromMinutes(5));

        Assert.False(outcome.Succeeded);
        Assert.Equal(CoordinatorErrorCodes.AttemptsExhausted, outcome.Failure!.Code);
        Assert.Contains($"after {fixture.MaxAttempts} attempts", outcome.Failure.Message, StringComparison.Ordinal);
        Assert.Equal(fixture.MaxAttempts, outcome.Attempts);
        var jobs = fixture.JobsFor(key);
        Assert.Equal(Enumerable.Range(1, fixture.MaxAttempts), jobs.Select(j => j.Attempt));
        Assert.Equal(fixture.MaxAttempts, jobs.Select(j => j.JobId).Distinct().Count());
    }

    [Fact]
    public async Task A_store_that_fails_on_the_first_attempt_only_is_retried_and_the_layer_built()
    {
        var key = LayerStoreFixture.NewKey();
        var grain = fixture.Grains.GetGrain<ILayerGrain>(key);
        // The store's address is a proxy to the registry that drops every connection until the second attempt is
        // published: the first attempt meets a store fault, the second a working store.
        await using var proxy = new FlakyProxy(TestRegistryPort());
        fixture.BeforePublish = job =>
        {
            if (job.CacheKey == key && job.Attempt >= 2)
            {
                proxy.Open = true;
            }
        };
        try
        {
            var outcome = await grain.BuildAsync(fixture.Request("echo retried > /r.txt", blobStore: $"registry://127.0.0.1:{proxy.Port}/{fixture.Store.Repository}"))
                .WaitAsync(TimeSpan.FromMinutes(5));

            Assert.True(outcome.Succeeded, outcome.Failure?.Message);
            Assert.Equal(2, outcome.Attempts);
            Assert.NotNull(outcome.Success!.Layer);
            Assert.Equal([1, 2], fixture.JobsFor(key).Select(j => j.Attempt));
            Assert.True(proxy.Dropped > 0, "the first attempt should have met the closed proxy");
        }
        finally
        {
            fixture.BeforePublish = null;
        }
    }

    [Fact]
    public void Grain_arguments_with_contract_records_survive_Orleans_serialization()
    {
        // In one silo Orleans passes [Immutable] arguments by reference; between silos it serializes them. The
        // contract records inside go through the System.Text.Json codec CoordinatorHosting registers.
        var serializer = fixture.Services.GetRequiredService<Serializer>();
        var request = fixture.Request("echo hi");

        var copy = serializer.Deserialize<LayerJobRequest>(serializer.SerializeToArray(request))!;

        Assert.Equal(request.BuildId, copy.BuildId);
        Assert.Equal(request.BlobStore, copy.BlobStore);
        Assert.Equal(request.Parents.ToArray(), copy.Parents.ToArray());
        Assert.Equal(request.Step!.Display, copy.Step!.Display);
        Assert.Equal(request.Step.Run!.Args, copy.Step!.Run!.Args);
    }

    private static int TestRegistryPort() => int.Parse(Farm.Testing.TestRegistries.Anonymous.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
}
