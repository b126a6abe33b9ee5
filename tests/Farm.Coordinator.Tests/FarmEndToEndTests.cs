using System.Text.Json.Nodes;
using Farm.Coordinator.Builds;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>
/// Issue #5's "Must show", through a cluster of one coordinator (Redis, RabbitMQ) and two worker processes running
/// runc; images are checked with podman and skopeo. Each Dockerfile carries a fresh salt so that no earlier run's
/// cache answers for it.
/// </summary>
[Collection(FarmClusterCollection.Name)]
public sealed class FarmEndToEndTests(FarmClusterFixture farm) : IClassFixture<FarmClusterFixture>
{
    private readonly string _salt = Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_multi_stage_dockerfile_is_pushed_and_runs_its_cmd_with_the_config_and_history_it_declares()
    {
        var tag = farm.Context.Tag("multi:1");
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE} AS build
            WORKDIR /src
            COPY greeting.txt .
            RUN tr a-z A-Z < greeting.txt > /shout.txt && echo {{_salt}} > /salt
            FROM ${BASE}
            ENV GREETING_FILE=/app/shout.txt MODE=farm
            WORKDIR /app
            COPY --from=build /shout.txt ./shout.txt
            EXPOSE 8080/tcp 9090/udp
            LABEL org.example.team="builds" version="1"
            CMD ["sh","-c","cat $GREETING_FILE; echo mode=$MODE; pwd"]
            """;

        var record = await farm.Coordinator.BuildAsync(await farm.SubmissionAsync(dockerfile, new Dictionary<string, string> { ["greeting.txt"] = "hello farm\n" }, [tag]), farm.Diagnostics);

        var finished = Assert.IsType<BuildFinished>(record.End);
        Assert.Equal([tag], finished.Pushed);
        Assert.Equal(finished.ImageDigest, await SubmitContext.RegistryDigestAsync(tag));
        Assert.Equal("HELLO FARM\nmode=farm\n/app\n", await farm.PodmanRunAsync(tag));

        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{tag}"))!;
        var image = config["config"]!;
        Assert.Equal(
            ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING_FILE=/app/shout.txt", "MODE=farm"],
            image["Env"]!.AsArray().Select(e => (string?)e));
        Assert.Equal(["sh", "-c", "cat $GREETING_FILE; echo mode=$MODE; pwd"], image["Cmd"]!.AsArray().Select(e => (string?)e));
        Assert.Equal("/app", (string?)image["WorkingDir"]);
        Assert.Equal(["8080/tcp", "9090/udp"], image["ExposedPorts"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal("builds", (string?)image["Labels"]!["org.example.team"]);
        Assert.Equal("1", (string?)image["Labels"]!["version"]);

        // History: the base's entry, then one per instruction of the target stage; config-only ones are empty layers.
        var history = config["history"]!.AsArray().Select(h => (CreatedBy: (string?)h!["created_by"] ?? string.Empty, Empty: (bool?)h["empty_layer"] ?? false)).ToList();
        Assert.Equal(
            [("busybox-static", false), ("ENV", true), ("WORKDIR", false), ("COPY", false), ("EXPOSE", true), ("LABEL", true), ("CMD", true)],
            history.Select(h => (h.CreatedBy.Split(' ')[0], h.Empty)));
        Assert.Contains("8080/tcp", history[4].CreatedBy, StringComparison.Ordinal);
        var manifest = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{tag}"))!;
        Assert.Equal(history.Count(h => !h.Empty), manifest["Layers"]!.AsArray().Count);
    }

    [Fact]
    public async Task An_unchanged_rebuild_runs_no_job_and_a_changed_file_reruns_exactly_the_steps_after_its_copy()
    {
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE}
            RUN echo {{_salt}} > /salt
            COPY a.txt /a.txt
            RUN cat /a.txt /a.txt > /a-twice
            COPY b.txt /b.txt
            CMD ["cat","/a-twice","/b.txt"]
            """;
        var files = new Dictionary<string, string> { ["a.txt"] = "a1\n", ["b.txt"] = "b1\n" };
        var first = await BuildAsync(dockerfile, files, "cache:1");
        Assert.Equal(4, first.Jobs);
        Assert.Equal(["built", "built", "built", "built"], first.Steps.Select(s => s.Status));

        var unchanged = await BuildAsync(dockerfile, files, "cache:2");
        Assert.Equal(0, unchanged.Jobs);
        Assert.Equal(["cached", "cached", "cached", "cached"], unchanged.Steps.Select(s => s.Status));
        Assert.Equal(first.Digest, unchanged.Digest);

        // b.txt is copied last: only its COPY runs again.
        var newB = await BuildAsync(dockerfile, new Dictionary<string, string>(files) { ["b.txt"] = "b2\n" }, "cache:3");
        Assert.Equal(1, newB.Jobs);
        Assert.Equal(["cached", "cached", "cached", "built"], newB.Steps.Select(s => s.Status));
        Assert.Equal("a1\na1\nb2\n", await farm.PodmanRunAsync(newB.Tag));

        // a.txt feeds its COPY, the RUN reading it, and every later step: those run again, the first RUN does not.
        var newA = await BuildAsync(dockerfile, new Dictionary<string, string>(files) { ["a.txt"] = "a2\n" }, "cache:4");
        Assert.Equal(3, newA.Jobs);
        Assert.Equal(["cached", "built", "built", "built"], newA.Steps.Select(s => s.Status));
        Assert.Equal("a2\na2\nb1\n", await farm.PodmanRunAsync(newA.Tag));
    }

    [Fact]
    public async Task A_changed_build_arg_reruns_exactly_the_run_steps_in_its_scope()
    {
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE} AS tool
            RUN echo tool-{{_salt}} > /tool
            FROM ${BASE}
            COPY --from=tool /tool /tool
            RUN echo before-{{_salt}} > /before
            ARG FLAVOR=plain
            RUN echo flavor=$FLAVOR > /flavor
            RUN cat /flavor /tool > /out
            CMD ["cat","/out"]
            """;
        var files = new Dictionary<string, string> { ["unused.txt"] = "-\n" };
        var sweet = await BuildAsync(dockerfile, files, "arg:sweet", new Dictionary<string, string> { ["FLAVOR"] = "sweet" });
        Assert.Equal(5, sweet.Jobs);
        Assert.Equal($"flavor=sweet\ntool-{_salt}\n", await farm.PodmanRunAsync(sweet.Tag));

        var sour = await BuildAsync(dockerfile, files, "arg:sour", new Dictionary<string, string> { ["FLAVOR"] = "sour" });
        Assert.Equal(2, sour.Jobs);
        Assert.Equal(["RUN echo flavor=$FLAVOR > /flavor", "RUN cat /flavor /tool > /out"], sour.Steps.Where(s => s.Status == "built").Select(s => s.Display));
        Assert.Equal(3, sour.Steps.Count(s => s.Status == "cached"));
        Assert.Equal($"flavor=sour\ntool-{_salt}\n", await farm.PodmanRunAsync(sour.Tag));
    }

    [Fact]
    public async Task Ten_concurrent_builds_of_a_new_dockerfile_run_each_step_once_and_push_identical_layers()
    {
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE} AS a
            RUN echo a-{{_salt}} > /a && sleep 1
            FROM ${BASE}
            RUN echo b-{{_salt}} > /b
            COPY --from=a /a /a
            COPY f.txt /f.txt
            """;
        var template = await farm.SubmissionAsync(dockerfile, new Dictionary<string, string> { ["f.txt"] = "f\n" }, []);
        // One repository each: ten concurrent pushes into one repository of the test registry were seen to fail with
        // DIGEST_INVALID on the manifest (a registry-side race, not what this test is about).
        var tags = Enumerable.Range(0, 10).Select(i => farm.Context.Tag($"flight-{i}:1")).ToList();

        var records = tags.Select(t => farm.Coordinator.Builds.Submit(template with { BuildId = Guid.NewGuid(), Tags = [t], Push = true })).ToList();
        await Wait.UntilAsync(() => records.All(r => r.IsDone), TimeSpan.FromMinutes(5),
            () => $"10 builds to end; {records.Count(r => r.IsDone)} did{farm.Diagnostics()}");

        Assert.All(records, r => Assert.True(r.Status == BuildStatus.Succeeded, FarmCoordinator.Describe(r)));
        var ids = records.Select(r => r.BuildId).ToHashSet();
        var jobs = farm.Jobs.Where(j => ids.Contains(j.BuildId)).ToList();
        Assert.Equal(4, jobs.Count);
        Assert.Equal(4, jobs.Select(j => j.CacheKey).Distinct().Count());
        // Every build got each step's layer from that one job (joined the flight or hit the cache it wrote).
        var jobIds = jobs.Select(j => j.JobId).ToHashSet();
        Assert.All(records, r => Assert.All(r.Events.OfType<StepFinished>(), s => Assert.True(s.Outcome.Cached || jobIds.Contains(s.Outcome.JobId!.Value), $"{r.BuildId} {s.Outcome.StepId} came from job {s.Outcome.JobId}")));

        var layers = new List<string>();
        foreach (var tag in tags)
        {
            var manifest = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{tag}"))!;
            layers.Add(string.Join(",", manifest["Layers"]!.AsArray().Select(l => (string?)l)));
        }

        Assert.Single(layers.Distinct());
        Assert.Equal(4, layers[0].Split(',').Length);
    }

    [Fact]
    public async Task Two_independent_stages_run_on_different_workers_at_the_same_time()
    {
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE} AS left
            RUN sleep 3 && echo left-{{_salt}} > /left
            FROM ${BASE} AS right
            RUN sleep 3 && echo right-{{_salt}} > /right
            FROM ${BASE}
            COPY --from=left /left /left
            COPY --from=right /right /right
            """;

        var record = await farm.Coordinator.BuildAsync(await farm.SubmissionAsync(dockerfile, new Dictionary<string, string> { ["x"] = "x\n" }, []), farm.Diagnostics);

        Assert.Equal(BuildStatus.Succeeded, record.Status);
        var sleeps = record.Events.OfType<StepFinished>().Select(s => s.Outcome).Where(o => o.Display.StartsWith("RUN sleep", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, sleeps.Count);
        Assert.All(sleeps, s => Assert.False(s.Cached));
        Assert.Equal(["worker-a", "worker-b"], sleeps.Select(s => s.Worker).Order(StringComparer.Ordinal));
        // The workers' reports of when each RUN executed, as the step events carry them, overlap.
        var (left, right) = (sleeps[0].Timings!, sleeps[1].Timings!);
        Assert.True(left.ExecutionStart < right.ExecutionEnd && right.ExecutionStart < left.ExecutionEnd,
            $"execution intervals do not overlap: {left.ExecutionStart:O}..{left.ExecutionEnd:O} on {sleeps[0].Worker} and {right.ExecutionStart:O}..{right.ExecutionEnd:O} on {sleeps[1].Worker}");
    }

    [Fact]
    public async Task Two_no_cache_builds_with_SOURCE_DATE_EPOCH_on_different_workers_give_one_image_digest()
    {
        // The files and the layers' own times differ between the builds (the context is written again, the steps run
        // again later); SOURCE_DATE_EPOCH clamps them all, so the image is the same byte for byte.
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE}
            COPY app.txt /app/app.txt
            RUN mkdir -p /var/lib/app && echo {{_salt}} > /var/lib/app/salt && touch /app/app.txt
            USER nobody
            WORKDIR /home/nobody/work
            """;
        var args = new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" };
        var workerA = farm.Workers.Single(w => w.Name == "worker-a");
        var workerB = farm.Workers.Single(w => w.Name == "worker-b");
        try
        {
            // One worker at a time, so that each build runs every step on the worker the test chose.
            await farm.StopWorkerAsync(workerB);
            await farm.WaitForWorkersAsync(1);
            var onA = await BuildNoCacheAsync(dockerfile, "sde:a", args);
            var startedAgain = DateTimeOffset.UtcNow;
            farm.StartWorker("worker-b");
            await farm.WaitForWorkersAsync(2);
            await farm.StopWorkerAsync(workerA);
            await farm.WaitForWorkersAsync(1);
            var onB = await BuildNoCacheAsync(dockerfile, "sde:b", args);

            Assert.All(onA.Outcomes, o => Assert.Equal(("worker-a", false), (o.Worker, o.Cached)));
            Assert.All(onB.Outcomes, o => Assert.Equal(("worker-b", false), (o.Worker, o.Cached)));
            Assert.True(onB.Outcomes.All(o => o.Finished > startedAgain), "the second build reused a step of the first");
            Assert.Equal(onA.Digest, onB.Digest);
            var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{onB.Tag}"))!;
            Assert.Equal("2023-11-14T22:13:20Z", (string?)config["created"]);
            Assert.All(config["history"]!.AsArray().Skip(1), h => Assert.Equal("2023-11-14T22:13:20Z", (string?)h!["created"]));
        }
        finally
        {
            foreach (var name in new[] { "worker-a", "worker-b" }.Where(n => farm.Workers.All(w => w.Name != n)))
            {
                farm.StartWorker(name);
            }

            await farm.WaitForWorkersAsync(2);
        }
    }

    private async Task<(string Tag, string Digest, IReadOnlyList<StepOutcome> Outcomes)> BuildNoCacheAsync(string dockerfile, string tagName, IReadOnlyDictionary<string, string> buildArgs)
    {
        var tag = farm.Context.Tag(tagName);
        var submit = await farm.SubmissionAsync(dockerfile, new Dictionary<string, string> { ["app.txt"] = "app\n" }, [tag], buildArgs) with { NoCache = true };
        var record = await farm.Coordinator.BuildAsync(submit, farm.Diagnostics);
        var finished = Assert.IsType<BuildFinished>(record.End);
        Assert.Equal(finished.ImageDigest, await SubmitContext.RegistryDigestAsync(tag));
        return (tag, finished.ImageDigest, [.. record.Events.OfType<StepFinished>().Select(s => s.Outcome)]);
    }

    private async Task<Built> BuildAsync(string dockerfile, IReadOnlyDictionary<string, string> files, string tagName, IReadOnlyDictionary<string, string>? buildArgs = null)
    {
        var tag = farm.Context.Tag(tagName);
        var submit = await farm.SubmissionAsync(dockerfile, files, [tag], buildArgs);
        var record = await farm.Coordinator.BuildAsync(submit, farm.Diagnostics);
        var finished = Assert.IsType<BuildFinished>(record.End);
        var steps = record.Events.OfType<StepFinished>().Select(s => s.Outcome).OrderBy(o => o.StepId, StringComparer.Ordinal).ToList();
        return new Built(tag, finished.ImageDigest, farm.JobsOf(submit.BuildId).Count, [.. steps.Select(o => new BuiltStep(o.StepId, o.Display, o.Cached ? "cached" : "built"))]);
    }

    private sealed record Built(string Tag, string Digest, int Jobs, IReadOnlyList<BuiltStep> Steps);

    private sealed record BuiltStep(string StepId, string Display, string Status);
}
