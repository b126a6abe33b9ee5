using System.Collections.Immutable;
using System.Text.Json;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Grains;

namespace Farm.Coordinator.Tests;

/// <summary>The build grain persists events as JSON lines; a coordinator that did not run the build shows them from there.</summary>
public sealed class BuildEventJsonTests
{
    private static readonly Guid Id = Guid.NewGuid();
    private static readonly DateTimeOffset At = new(2026, 11, 28, 10, 0, 0, TimeSpan.Zero);

    public static TheoryData<BuildEvent> Events() =>
    [
        new BuildStarted(Id, At, 2, 3),
        new BuildResumed(Id, At, "host/42", 2),
        new BaseImageResolved(Id, At, "busybox:1", "sha256:" + new string('a', 64)),
        new StepStarted(Id, At, "s0/1", "RUN true", "sha256:" + new string('b', 64)),
        new StepLog(Id, At, new StepLogLine(Id, "s0/1", Guid.NewGuid(), "stdout", "hello", At)),
        new BuildFinished(Id, At, "sha256:" + new string('c', 64), ["r/app:1"]),
        new BuildFailed(Id, At, "FARM4201", "Step s0/1 failed"),
        new CacheImported(Id, At, "127.0.0.1:5100/team/cache:1", 4),
        new CacheImported(Id, At, "127.0.0.1:5100/team/cache:2", 0, "FARM4350: The build cache ... was not imported"),
        new CacheExported(Id, At, "127.0.0.1:5100/team/cache:1", "sha256:" + new string('d', 64), 4, 3),
    ];

    [Theory]
    [MemberData(nameof(Events))]
    public void An_event_read_back_from_its_json_line_equals_the_event(BuildEvent buildEvent)
    {
        var line = BuildEventJson.Serialize(buildEvent);

        var read = BuildEventJson.Deserialize(line);

        Assert.StartsWith($"{{\"type\":\"{buildEvent.GetType().Name}\"", line, StringComparison.Ordinal);
        Assert.Equal(buildEvent.GetType(), read?.GetType());
        Assert.Equal(line, BuildEventJson.Serialize(read!));
    }

    [Fact]
    public void A_step_outcome_keeps_its_worker_layer_and_timings()
    {
        var outcome = new StepOutcome("s1/2", "COPY a /a", "sha256:" + new string('d', 64), false, new LayerRef("sha256:" + new string('e', 64), "sha256:" + new string('f', 64), "application/vnd.oci.image.layer.v1.tar+gzip", 12), "worker-a", Guid.NewGuid(), At, At.AddSeconds(3), new JobTimings { ExecutionStart = At.AddSeconds(1), ExecutionEnd = At.AddSeconds(2) });

        var read = Assert.IsType<StepFinished>(BuildEventJson.Deserialize(BuildEventJson.Serialize(new StepFinished(Id, At, outcome))));

        Assert.Equal(outcome with { Timings = null }, read.Outcome with { Timings = null });
        Assert.Equal(outcome.Timings, read.Outcome.Timings);
    }

    [Fact]
    public void A_line_of_an_unknown_event_type_is_skipped_not_fatal()
    {
        Assert.Null(BuildEventJson.Deserialize("{\"type\":\"SomethingNewer\",\"buildId\":\"" + Id + "\"}"));
        Assert.ThrowsAny<JsonException>(() => BuildEventJson.Deserialize("not json"));
    }

    [Fact]
    public void A_record_rebuilt_from_a_persisted_state_has_its_status_and_events()
    {
        var submit = new SubmitBuild { BuildId = Id, Dockerfile = "FROM scratch\n", ContextDigest = "sha256:" + new string('0', 64), Tags = ["r/app:1"] };
        var state = new BuildGrainStateV1
        {
            Submission = JsonSerializer.Serialize(submit, BuildEventJson.Options),
            Status = BuildStatus.Succeeded,
            SubmittedAt = At,
            Events = [BuildEventJson.Serialize(new BuildStarted(Id, At, 1, 0)), BuildEventJson.Serialize(new BuildFinished(Id, At, "sha256:" + new string('c', 64), ["r/app:1"]))],
            Runs = 1,
        };

        var record = BuildRecord.FromState(Id, state);

        Assert.Equal(BuildStatus.Succeeded, record.Status);
        Assert.Equal(["r/app:1"], record.Submission.Tags);
        Assert.Equal("sha256:" + new string('c', 64), Assert.IsType<BuildFinished>(record.End).ImageDigest);
        Assert.Equal(2, record.Events.Count);
        Assert.Equal(ImmutableArray<string>.Empty, new BuildGrainStateV1().Events);
    }

    [Fact]
    public void A_numbered_line_has_its_seq_after_its_type_and_reads_back_as_the_event()
    {
        var line = BuildEventJson.Serialize(new SequencedBuildEvent(42, new BuildStarted(Id, At, 1, 2)));

        Assert.StartsWith("{\"type\":\"BuildStarted\",\"seq\":42,", line, StringComparison.Ordinal);
        Assert.Equal(42, BuildEventJson.Seq(line));
        Assert.Equal(new BuildStarted(Id, At, 1, 2), BuildEventJson.Deserialize(line));
        Assert.Null(BuildEventJson.Seq(BuildEventJson.Serialize(new BuildStarted(Id, At, 1, 2))));
    }

    [Fact]
    public void A_record_numbers_its_events_keeps_persisted_numbers_and_continues_after_a_resumed_runs_start()
    {
        var submit = new SubmitBuild { BuildId = Id, Dockerfile = "FROM scratch\n", ContextDigest = "sha256:" + new string('0', 64) };
        // Persisted by an earlier run: the grain keeps a tail, so numbers need not start at 1.
        var record = BuildRecord.From(submit, At, [
            BuildEventJson.Serialize(new SequencedBuildEvent(7, new BuildStarted(Id, At, 1, 1))),
            BuildEventJson.Serialize(new SequencedBuildEvent(8, new StepStarted(Id, At, "s0/1", "RUN true", "k"))),
        ]);
        Assert.Equal([7L, 8L], record.EventsAfter(0).Select(e => e.Seq));

        // The shared stream got further than the grain: the resumed run numbers on after it.
        record.ContinueAfter(10);
        Assert.Equal(11, record.Append(new BuildResumed(Id, At, "host/1", 2)));
        Assert.Equal(12, record.Append(new BuildFinished(Id, At, "sha256:" + new string('c', 64), [])));
        Assert.Equal(0, record.Append(new BuildStarted(Id, At, 1, 1)));
        Assert.Equal([11L, 12L], record.EventsAfter(8).Select(e => e.Seq));
    }

    [Fact]
    public async Task A_follower_of_a_record_gets_the_events_after_the_number_it_saw_then_the_new_ones_until_the_end()
    {
        var record = BuildRecord.From(new SubmitBuild { BuildId = Id, Dockerfile = "FROM scratch\n", ContextDigest = "sha256:" + new string('0', 64) }, At, []);
        record.Append(new BuildStarted(Id, At, 1, 1));
        record.Append(new StepStarted(Id, At, "s0/1", "RUN true", "k"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var follow = record.FollowAsync(1, timeout.Token).GetAsyncEnumerator(timeout.Token);

        Assert.True(await follow.MoveNextAsync());
        Assert.Equal(2, follow.Current.Seq);
        var next = follow.MoveNextAsync();
        record.Append(new BuildFailed(Id, At, "FARM4201", "failed"));
        Assert.True(await next);
        Assert.Equal(new SequencedBuildEvent(3, new BuildFailed(Id, At, "FARM4201", "failed")), follow.Current);
        Assert.False(await follow.MoveNextAsync());
        await follow.DisposeAsync();
    }
}
