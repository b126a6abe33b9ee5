using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Cache;
using Farm.Coordinator.Grains;
using Farm.Dockerfile.Context;
using Farm.Oci;
using Farm.Oci.Stores;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The orchestrator alone, without a silo, a bus or a worker: its layer builds go to a fake <see cref="ILayerBuilds"/>
/// that stores a small blob per job and records what it was asked. What is asserted is what the farm promises: one
/// job per step that misses the cache, with the right parents; none when everything hits; a failing job fails its
/// step; a cancelled build withdraws from the job it waited for and names nothing.
/// </summary>
public sealed class OrchestratorUnitTests : IAsyncLifetime
{
    private const string Dockerfile = """
        FROM scratch AS tools
        RUN make-tools
        FROM scratch
        COPY --from=tools /tools /tools
        RUN use-tools
        CMD ["/tools/run"]
        """;

    private readonly string _work = Directory.CreateTempSubdirectory("farm-orchestrator-").FullName;
    private readonly BlobStoreLocator _stores = new();
    private IBlobStore _store = null!;
    private FakeLayerBuilds _layers = null!;

    private string Store => "oci-layout:" + Path.Combine(_work, "store");

    public async Task InitializeAsync()
    {
        _store = await _stores.OpenAsync(Store, CancellationToken.None);
        _layers = new FakeLayerBuilds(_store);
    }

    public Task DisposeAsync()
    {
        _stores.Dispose();
        Directory.Delete(_work, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Each_missing_layer_is_asked_for_once_with_its_parents_and_a_rebuild_asks_for_none()
    {
        var orchestrator = Orchestrator();
        var first = await orchestrator.RunAsync(Request(), null, CancellationToken.None);

        Assert.Equal(3, _layers.Asked.Count);
        Assert.Equal(3, _layers.Asked.Select(a => a.Key).Distinct().Count());
        var make = Ask("RUN make-tools");
        var copy = Ask("COPY --from=tools");
        var use = Ask("RUN use-tools");
        Assert.Empty(make.Request.Parents);
        Assert.Equal([_layers.Built[make.Key].Digest], copy.Request.Step!.Copy!.From.Layers!.Select(l => l.Digest));
        Assert.Equal([_layers.Built[copy.Key].Digest], use.Request.Parents.Select(l => l.Digest));
        Assert.All(first.Steps, s => Assert.False(s.Cached));

        _layers.Asked.Clear();
        var again = await Orchestrator().RunAsync(Request(), null, CancellationToken.None);

        Assert.Empty(_layers.Asked);
        Assert.All(again.Steps, s => Assert.True(s.Cached));
        Assert.Equal(first.ImageDigest, again.ImageDigest);
    }

    [Fact]
    public async Task A_failed_job_fails_its_step_with_the_workers_code_and_output()
    {
        _layers.Fail = new JobFailure { Code = FarmErrorCodes.RunFailed, Message = "exited with code 3", ExitCode = 3, OutputTail = ["no tools here"] };

        var error = await Assert.ThrowsAsync<BuildStepFailedException>(() => Orchestrator().RunAsync(Request(), null, CancellationToken.None));

        Assert.Equal("s0/1", error.StepId);
        Assert.Equal(3, error.ExitCode);
        Assert.Contains("no tools here", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cancelled_build_withdraws_from_the_job_it_awaits_and_reports_no_end()
    {
        _layers.Hold = true;
        using var cancel = new CancellationTokenSource();
        var events = new ConcurrentQueue<BuildEvent>();
        var run = Orchestrator().RunAsync(Request(), new Collect(events), cancel.Token);
        await Farm.Testing.Wait.UntilAsync(() => !_layers.Asked.IsEmpty, TimeSpan.FromSeconds(30), () => "the orchestrator to ask for a layer");

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.NotEmpty(_layers.Withdrawn);
        Assert.DoesNotContain(events, e => e is BuildFinished or ImageStored);
    }

    private (string Key, LayerJobRequest Request) Ask(string display) =>
        Assert.Single(_layers.Asked, a => a.Request.Step!.Display.StartsWith(display, StringComparison.Ordinal));

    private BuildOrchestrator Orchestrator() => new(
        _layers,
        new VerifyingActionCache(new FileActionCache(Path.Combine(_work, "ac")), _store, NullLogger<VerifyingActionCache>.Instance),
        _stores);

    private BuildRequest Request() => new()
    {
        BuildId = Guid.NewGuid(),
        Dockerfile = Dockerfile,
        ContextDigest = Digest.Sha256([]).ToString(),
        ContextIndex = new ContextIndex([]),
        CacheStore = Store,
    };

    private sealed class Collect(ConcurrentQueue<BuildEvent> events) : IProgress<BuildEvent>
    {
        public void Report(BuildEvent value) => events.Enqueue(value);
    }

    /// <summary>Builds each layer as a small blob named after its key, or fails, or waits until cancelled.</summary>
    private sealed class FakeLayerBuilds(IBlobStore store) : ILayerBuilds
    {
        public ConcurrentQueue<(string Key, LayerJobRequest Request)> Asked { get; } = new();

        public ConcurrentDictionary<string, BuiltLayer> Built { get; } = new();

        public ConcurrentQueue<string> Withdrawn { get; } = new();

        public JobFailure? Fail { get; set; }

        public bool Hold { get; set; }

        public async Task<LayerJobOutcome> BuildOrJoinAsync(string key, LayerJobRequest request, CancellationToken cancellationToken)
        {
            Asked.Enqueue((key, request));
            if (Hold)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Withdrawn.Enqueue(key);
                    throw;
                }
            }

            if (Fail is { } failure)
            {
                return new LayerJobOutcome { CacheKey = key, JobId = Guid.NewGuid(), Attempts = 1, Failure = failure };
            }

            var bytes = Encoding.UTF8.GetBytes("layer of " + key);
            var descriptor = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(bytes), Size = bytes.Length };
            using (var content = new MemoryStream(bytes))
            {
                await store.PutAsync(descriptor, content, cancellationToken);
            }

            var layer = new BuiltLayer
            {
                Digest = descriptor.Digest.ToString(),
                DiffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("diff of " + key))),
                MediaType = descriptor.MediaType,
                Size = descriptor.Size,
            };
            Built[key] = layer;
            return new LayerJobOutcome { CacheKey = key, JobId = Guid.NewGuid(), Attempts = 1, Success = new JobSuccess { Layer = layer, Worker = "fake" } };
        }
    }
}
