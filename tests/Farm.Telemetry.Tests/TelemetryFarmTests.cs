using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker;
using MassTransit;

namespace Farm.Telemetry.Tests;

/// <summary>
/// What a platform team sees of a build through the farm's telemetry: one trace from the CLI through the coordinator
/// to both workers, metrics on every process's <c>/metrics</c> that Prometheus scrapes, and the live dashboard.
/// </summary>
public sealed class TelemetryFarmTests(TelemetryFarmFixture farm) : IClassFixture<TelemetryFarmFixture>
{
    private static readonly string[] Phases = ["diff", "execute", "input_fetch", "queued", "upload"];

    [Fact]
    public async Task A_multi_stage_build_is_one_trace_from_the_cli_through_the_coordinator_to_both_workers_with_phase_spans_per_step()
    {
        Assert.True((string?)farm.Status["status"] == "succeeded", farm.Status.ToJsonString() + farm.Diagnostics());
        var steps = farm.Status["steps"]!.AsArray().Select(s => s!.AsObject()).ToList();
        Assert.Equal(5, steps.Count);

        // Every built step has its coordinator span and, on the worker that built it, a job span with five phases.
        List<ReceivedSpan> trace = [];
        await Wait.UntilAsync(
            () =>
            {
                trace = [.. farm.Otlp.Spans.Where(s => s.TraceId == farm.TraceId)];
                return trace.Any(s => s.Name == "push")
                    && steps.All(step => trace.Count(s => s.Scope == FarmTelemetry.Worker && s.Name == $"step {step["stepId"]}" && s["farm.outcome"] == "built") == 1)
                    && trace.Count(s => s.Scope == FarmTelemetry.Worker && s["farm.phase"] is not null) == steps.Count * Phases.Length;
            },
            TimeSpan.FromSeconds(60),
            () => $"the spans of trace {farm.TraceId}; received so far:{Environment.NewLine}{string.Join(Environment.NewLine, trace)}");

        // The trace the CLI printed holds the CLI process's own root span, with the context's packing and upload below it.
        var byId = trace.ToDictionary(s => s.SpanId);
        var cli = Assert.Single(trace, s => s.Scope == FarmTelemetry.Cli && s.Name == "farm build");
        Assert.Equal("farm-cli", cli.Service);
        Assert.Equal("remote", cli["farm.mode"]);
        Assert.Equal(farm.Tag, cli["farm.tags"]);
        var packed = farm.Cli.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).Single(e => (string?)e["type"] == "ContextPacked");
        Assert.Equal((string?)packed["digest"], cli["farm.context_digest"]);
        Assert.Equal(cli.SpanId, Assert.Single(trace, s => s.Scope == FarmTelemetry.Cli && s.Name == "pack context").ParentSpanId);
        Assert.Equal(cli.SpanId, Assert.Single(trace, s => s.Scope == FarmTelemetry.Cli && s.Name == "upload context").ParentSpanId);

        // The coordinator's build span descends from the CLI's span; its stages and steps from the build.
        var build = Assert.Single(trace, s => s.Scope == FarmTelemetry.Coordinator && s.Name == "build");
        Assert.Equal("farm-coordinator", build.Service);
        Assert.Equal(farm.BuildId.ToString(), build["farm.build_id"]);
        Assert.Equal("succeeded", build["farm.outcome"]);
        Assert.Contains(cli.SpanId, Ancestors(build, byId));
        Assert.Equal(3, trace.Count(s => s.Scope == FarmTelemetry.Coordinator && s.Name.StartsWith("stage ", StringComparison.Ordinal)));
        var push = Assert.Single(trace, s => s.Scope == FarmTelemetry.Coordinator && s.Name == "push");
        Assert.Contains(build.SpanId, Ancestors(push, byId));

        foreach (var step in steps)
        {
            var stepId = (string)step["stepId"]!;
            var coordinatorStep = Assert.Single(trace, s => s.Scope == FarmTelemetry.Coordinator && s.Name == $"step {stepId}");
            Assert.Contains(build.SpanId, Ancestors(coordinatorStep, byId));
            Assert.Equal((string?)step["cacheKey"], coordinatorStep["farm.cache_key"]);
            Assert.Equal("false", coordinatorStep["farm.cached"]);
            Assert.Equal((string?)step["worker"], coordinatorStep["farm.worker"]);
            Assert.Equal("0", coordinatorStep["farm.exit_code"]);
            Assert.True(long.Parse(coordinatorStep["farm.layer.size"]!, CultureInfo.InvariantCulture) > 0, $"{stepId} reports no layer bytes");

            // The worker's job span is in the same trace below the coordinator's step: the context crossed Orleans and RabbitMQ.
            var job = Assert.Single(trace, s => s.Scope == FarmTelemetry.Worker && s.Name == $"step {stepId}");
            Assert.Equal("farm-worker", job.Service);
            Assert.Equal((string?)step["worker"], job.Instance);
            Assert.Contains(coordinatorStep.SpanId, Ancestors(job, byId));
            Assert.Equal(Phases, trace.Where(s => s.ParentSpanId == job.SpanId && s["farm.phase"] is not null).Select(s => s.Name).Order());
        }

        // Both workers took part, in this one trace.
        Assert.Equal(["worker-a", "worker-b"], trace.Where(s => s.Service == "farm-worker").Select(s => s.Instance).Distinct().Order());
    }

    [Fact]
    public async Task Farm_build_in_plain_mode_ends_with_its_trace_id_on_stderr_only_when_tracing_is_on()
    {
        string[] args = ["build", "--farm", $"http://127.0.0.1:{farm.CoordinatorPort}", "-f", farm.DockerfilePath, "--build-arg", $"BASE={farm.BaseImage}", "--progress", "plain", farm.ContextDirectory];
        var traced = await CliProcess.RunAsync(farm.TelemetryEnvironment, TimeSpan.FromMinutes(4), args);
        Assert.True(traced.ExitCode == 0, traced + farm.Diagnostics());
        var last = traced.Stderr.TrimEnd().Split('\n')[^1];
        Assert.Matches("^trace [0-9a-f]{32}$", last);
        var traceId = last["trace ".Length..];

        // That id names the trace of this build: the CLI's span and, below it, the coordinator's build span.
        List<ReceivedSpan> trace = [];
        await Wait.UntilAsync(
            () => DescendsFromCli(trace = [.. farm.Otlp.Spans.Where(s => s.TraceId == traceId)], "farm build", s => s.Scope == FarmTelemetry.Coordinator && s.Name == "build"),
            TimeSpan.FromSeconds(60),
            () => $"the coordinator's build span in trace {traceId}; received so far:{Environment.NewLine}{string.Join(Environment.NewLine, trace)}");
        var cli = Assert.Single(trace, s => s.Service == "farm-cli" && s.Name == "farm build");
        var build = Assert.Single(trace, s => s.Scope == FarmTelemetry.Coordinator && s.Name == "build");
        Assert.Contains(cli.SpanId, Ancestors(build, trace.ToDictionary(s => s.SpanId)));

        // Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is traced and nothing is said about it.
        var untraced = await CliProcess.RunAsync(new Dictionary<string, string> { [FarmTelemetry.OtlpEndpointVariable] = string.Empty }, TimeSpan.FromMinutes(4), args);
        Assert.True(untraced.ExitCode == 0, untraced + farm.Diagnostics());
        Assert.DoesNotContain("trace ", untraced.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_local_farm_daemon_exports_its_coordinator_and_worker_spans_in_the_clis_trace()
    {
        var state = Directory.CreateTempSubdirectory("farm-telemetry-embedded-").FullName;
        try
        {
            var dockerfile = Path.Combine(state, "Dockerfile");
            await File.WriteAllTextAsync(dockerfile, $"FROM {farm.BaseImage}\nRUN echo embedded-{Guid.NewGuid():N} > /e\n");
            var built = await CliProcess.RunAsync(
                new Dictionary<string, string>(farm.TelemetryEnvironment) { ["FARM_STATE_DIR"] = Path.Combine(state, "state") },
                TimeSpan.FromMinutes(4),
                "build", "-f", dockerfile, "--progress", "rawjson", farm.ContextDirectory);
            Assert.True(built.ExitCode == 0, built.ToString());
            var traceId = (string?)JsonNode.Parse(built.Stdout.Split('\n')[0])?["traceId"];
            Assert.NotNull(traceId);

            List<ReceivedSpan> trace = [];
            await Wait.UntilAsync(
                () => DescendsFromCli(trace = [.. farm.Otlp.Spans.Where(s => s.TraceId == traceId)], "farm build", s => s.Scope == FarmTelemetry.Worker && s["farm.phase"] == "execute"),
                TimeSpan.FromSeconds(60),
                () => $"the local daemon's worker execute span below the CLI's in trace {traceId}; received so far:{Environment.NewLine}{string.Join(Environment.NewLine, trace)}");
            Assert.Equal("local", Assert.Single(trace, s => s.Name == "farm build")["farm.mode"]);
            // The CLI's own spans are farm-cli's; the build's are the daemon's (the coordinator process with Farm:Local),
            // which took the OTLP settings from the CLI that started it.
            Assert.All(trace.Where(s => s.Scope == FarmTelemetry.Cli), s => Assert.Equal("farm-cli", s.Service));
            Assert.All(trace.Where(s => s.Scope is FarmTelemetry.Coordinator or FarmTelemetry.Worker), s => Assert.Equal("farm-coordinator", s.Service));
            Assert.True(trace.Count(s => s.Scope == FarmTelemetry.Coordinator && s.Name == "step s0/1") == 1, string.Join(Environment.NewLine, trace));
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task Farm_submit_traces_the_build_it_publishes_to_rabbitmq_under_its_own_span()
    {
        var submitted = await CliProcess.RunAsync(
            new Dictionary<string, string>(farm.TelemetryEnvironment) { ["FARM_RABBITMQ"] = farm.AmqpUrl },
            TimeSpan.FromMinutes(4),
            "submit", "--farm", $"http://127.0.0.1:{farm.CoordinatorPort}", "-f", farm.DockerfilePath, "--build-arg", $"BASE={farm.BaseImage}", farm.ContextDirectory);
        Assert.True(submitted.ExitCode == 0, submitted + farm.Diagnostics());
        var buildId = Guid.Parse(submitted.Stdout.Trim());
        var printed = submitted.Stderr.TrimEnd().Split('\n')[^1];
        Assert.Matches("^trace [0-9a-f]{32}$", printed);

        var status = await farm.WaitEndedAsync(buildId);
        Assert.True((string?)status["status"] == "succeeded", status.ToJsonString() + farm.Diagnostics());
        List<ReceivedSpan> trace = [];
        await Wait.UntilAsync(
            () => DescendsFromCli(trace = [.. farm.Otlp.Spans.Where(s => s.TraceId == printed["trace ".Length..])], "farm submit", s => s.Scope == FarmTelemetry.Coordinator && s.Name == "build" && s["farm.build_id"] == buildId.ToString()),
            TimeSpan.FromSeconds(60),
            () => $"the coordinator's build span of {buildId} in the trace farm submit printed ({printed}); received so far:{Environment.NewLine}{string.Join(Environment.NewLine, trace)}");
        var cli = Assert.Single(trace, s => s.Service == "farm-cli" && s.Name == "farm submit");
        Assert.Equal("queue", cli["farm.mode"]);
        var build = Assert.Single(trace, s => s.Scope == FarmTelemetry.Coordinator && s.Name == "build");
        Assert.Contains(cli.SpanId, Ancestors(build, trace.ToDictionary(s => s.SpanId)));
    }

    [Fact]
    public async Task After_the_build_coordinator_and_worker_metrics_show_it_and_prometheus_scrapes_them()
    {
        Assert.True((string?)farm.Status["status"] == "succeeded", farm.Status.ToJsonString() + farm.Diagnostics());
        var coordinator = await MetricsAsync(farm.CoordinatorPort);
        Assert.True(Value(coordinator, "farm_builds_total", "outcome=\"succeeded\"") >= 1, coordinator);
        Assert.True(Value(coordinator, "farm_cache_misses_total") >= 5, coordinator);
        Assert.True(Value(coordinator, "farm_step_duration_seconds_count", "phase=\"execute\"") >= 5, coordinator);
        Assert.True(Value(coordinator, "farm_build_duration_seconds_sum", "outcome=\"succeeded\"") > 0, coordinator);
        Assert.True(Value(coordinator, "farm_layers_bytes_total") > 0, coordinator);
        Assert.NotNull(Value(coordinator, "farm_queue_depth", "state=\"ready\""));
        Assert.Equal(2, Value(coordinator, "farm_workers"));
        Assert.Equal(2, Value(coordinator, "farm_workers_slots", "state=\"free\"") + Value(coordinator, "farm_workers_slots", "state=\"busy\""));

        foreach (var (name, port) in farm.WorkerMetricsPorts)
        {
            var worker = await MetricsAsync(port);
            Assert.True(Value(worker, "farm_worker_jobs_total", "outcome=\"built\"") >= 1, $"{name}:{Environment.NewLine}{worker}");
            Assert.True(Value(worker, "farm_worker_bytes_uploaded_bytes_total") > 0, $"{name}:{Environment.NewLine}{worker}");
            Assert.True(Value(worker, "farm_worker_bytes_downloaded_bytes_total") > 0, $"{name}:{Environment.NewLine}{worker}");
            Assert.True(Value(worker, "farm_worker_layer_store_size_bytes") > 0, $"{name}:{Environment.NewLine}{worker}");
            Assert.Equal(1, Value(worker, "farm_worker_slots", "state=\"free\""));
            Assert.True(Value(worker, "farm_worker_step_phase_duration_seconds_count", "phase=\"upload\"") >= 1, $"{name}:{Environment.NewLine}{worker}");
        }

        await using var prometheus = await PrometheusServer.StartAsync(
            new Dictionary<string, IReadOnlyList<string>>
            {
                ["farm-coordinator"] = [$"127.0.0.1:{farm.CoordinatorPort}"],
                ["farm-worker"] = [.. farm.WorkerMetricsPorts.Values.Select(p => $"127.0.0.1:{p}")],
            },
            [Path.Combine(RepoPaths.RepoRoot, "infra", "prometheus-alerts.yml")]);
        List<(JsonObject Labels, double Value)> builds = [], uploaded = [];
        await Wait.UntilAsync(
            async () =>
            {
                builds = await prometheus.QueryAsync("farm_builds_total{job=\"farm-coordinator\",outcome=\"succeeded\"}");
                uploaded = await prometheus.QueryAsync("farm_worker_bytes_uploaded_bytes_total{job=\"farm-worker\"} > 0");
                return builds.Count == 1 && uploaded.Count == 2;
            },
            TimeSpan.FromSeconds(60),
            () => $"Prometheus to scrape the coordinator's build count and both workers' uploads; got {builds.Count} and {uploaded.Count} series");
        Assert.True(builds[0].Value >= 1);

        // Every query of the Grafana dashboard runs on these metrics, its variables set to "All" (Prometheus answers a
        // query it cannot parse or evaluate with 400, which fails here), and the farm-wide gauges count each worker once.
        var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(RepoPaths.RepoRoot, "infra", "grafana", "farm.json")))!;
        Assert.Equal(["coordinator", "worker"], dashboard["templating"]!["list"]!.AsArray().Select(v => (string)v!["name"]!));
        var queries = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]?.AsArray() ?? []).Select(t => (string)t!["expr"]!).ToList();
        foreach (var query in queries)
        {
            await prometheus.QueryAsync(query.Replace("$coordinator", ".*", StringComparison.Ordinal).Replace("$worker", ".*", StringComparison.Ordinal));
        }

        Assert.Equal(2, Assert.Single(await prometheus.QueryAsync("max(farm_workers{instance=~\".*\"})")).Value);
        Assert.Equal(2, (await prometheus.QueryAsync($"farm_worker_slots{{state=\"free\",instance=~\"{string.Join('|', farm.WorkerMetricsPorts.Values.Select(p => $"127.0.0.1:{p}"))}\"}}")).Count);

        // The alert rules load and evaluate on them without error; none fires on a farm that just built successfully.
        List<(string Name, string Health, string? Error)> rules = [];
        await Wait.UntilAsync(
            async () => (rules = await prometheus.AlertRulesAsync()).Count == 5 && rules.All(r => r.Health != "unknown"),
            TimeSpan.FromSeconds(60),
            () => $"Prometheus to evaluate the five alert rules; got {string.Join(", ", rules)}");
        Assert.All(rules, r => Assert.True(r.Health == "ok", $"{r.Name}: {r.Health} {r.Error}"));
        Assert.Empty(await prometheus.QueryAsync("ALERTS{alertstate=\"firing\"}"));
    }

    [Fact]
    public async Task The_dashboard_shows_a_build_running_then_its_timeline_with_one_bar_per_step_marked_cached_or_built()
    {
        await using var gate = Gate.Start();
        await using var browser = await WebDriver.StartAsync();
        var artifacts = Directory.CreateDirectory(Path.Combine(RepoPaths.RepoRoot, "artifacts", "telemetry")).FullName;

        // The first build's five steps again (all cached), then one RUN that waits for the test to open a gate.
        // The gate is on this machine's loopback, which a RUN step reaches only with the host network: an entitlement the
        // build asks for and the fixture's coordinator grants.
        var dockerfile = TelemetryFarmFixture.Dockerfile + $"\nRUN --network=host until wget -q -O /dev/null {gate.Url}; do sleep 0.2; done; echo gate-open; echo done > /gated\n";
        var buildId = await farm.SubmitAsync(dockerfile, farm.Tag.Replace(":1", ":2", StringComparison.Ordinal), entitlements: ["network.host"]);
        await browser.NavigateAsync(new Uri($"http://127.0.0.1:{farm.CoordinatorPort}/"));

        string? rowStatus = null;
        await Wait.UntilAsync(
            async () =>
            {
                rowStatus = (string?)await browser.ExecuteAsync($"const r = document.querySelector('#builds tr[data-build-id=\"{buildId}\"]'); return r && r.dataset.status;");
                var running = (bool?)await browser.ExecuteAsync("return !!document.querySelector('#timeline .step[data-status=\"running\"]');");
                return rowStatus == "running" && running == true;
            },
            TimeSpan.FromMinutes(2),
            () => $"the dashboard to list build {buildId} as running with a running step; its row says {rowStatus ?? "nothing"}" + farm.Diagnostics());
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard-running.png"), await browser.ScreenshotAsync());

        gate.Open();
        await farm.WaitEndedAsync(buildId);
        JsonArray? bars = null;
        await Wait.UntilAsync(
            async () =>
            {
                rowStatus = (string?)await browser.ExecuteAsync($"const r = document.querySelector('#builds tr[data-build-id=\"{buildId}\"]'); return r && r.dataset.status;");
                bars = (await browser.ExecuteAsync(
                    "return [...document.querySelectorAll('#timeline .step')].map(s => ({ step: s.dataset.stepId, status: s.dataset.status, worker: s.dataset.worker, phases: [...s.querySelectorAll('.seg')].map(p => p.dataset.phase) }));"))?.AsArray();
                return rowStatus == "succeeded" && bars?.Count == 6 && bars.All(b => (string?)b!["status"] != "running");
            },
            TimeSpan.FromSeconds(30),
            () => $"the dashboard to show build {buildId} succeeded with six finished steps; row {rowStatus}, bars {bars?.ToJsonString()}");

        // The five steps of the first build came from the cache; the gated RUN was built, by a worker, in five phases.
        Assert.Equal(["cached", "cached", "cached", "cached", "cached", "built"], bars!.Select(b => (string?)b!["status"]));
        var built = bars![5]!;
        Assert.Contains((string?)built["worker"], new[] { "worker-a", "worker-b" });
        Assert.Equal(["queued", "input_fetch", "execute", "diff", "upload"], built["phases"]!.AsArray().Select(p => (string?)p));
        Assert.All(bars.Take(5), b => Assert.Empty(b!["phases"]!.AsArray()));

        // A click on the built step shows its output.
        await browser.ExecuteAsync("document.querySelectorAll('#timeline .step')[5].click();");
        string? logs = null;
        await Wait.UntilAsync(
            async () => (logs = (string?)await browser.ExecuteAsync("return document.getElementById('logs').hidden ? null : document.getElementById('logs-text').textContent;"))?.Contains("gate-open", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(30),
            () => $"the step's output with 'gate-open' under the timeline; it shows {logs ?? "nothing"}");

        // The built step says why it ran, on its row and in full above its output: the same reason the API gives.
        var timeline = (await farm.Api.GetFromJsonAsync<JsonObject>($"api/builds/{buildId}"))!;
        var gated = timeline["steps"]!.AsArray()[5]!;
        var why = (string)gated["explanation"]!["summary"]!;
        Assert.Contains((string?)gated["explanation"]!["reasons"]![0]!["kind"], new[] { "never-built", "new-step" });
        Assert.All(timeline["steps"]!.AsArray().Take(5), s => Assert.Null(s!["explanation"]));
        Assert.Equal(why, (string?)await browser.ExecuteAsync($"return document.querySelector('#timeline .step[data-step-id=\"{gated["stepId"]}\"] .why').dataset.explanation;"));
        Assert.Equal(0L, (long?)await browser.ExecuteAsync("return document.querySelectorAll('#timeline .step[data-status=\"cached\"] .why').length;"));
        var shown = (string?)await browser.ExecuteAsync("return document.getElementById('logs-why').hidden ? null : document.getElementById('logs-why').textContent;");
        Assert.StartsWith($"rebuilt: {why}\n- ", shown, StringComparison.Ordinal);
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard-explanation.png"), await browser.ScreenshotAsync());

        // Workers and the cache hit ratio are on the page too.
        await Wait.UntilAsync(
            async () => (long?)await browser.ExecuteAsync("return document.querySelectorAll('#workers tr[data-worker=\"worker-a\"], #workers tr[data-worker=\"worker-b\"]').length;") == 2
                && ((string?)await browser.ExecuteAsync("return document.getElementById('stat-hits').textContent;"))?.EndsWith('%') == true,
            TimeSpan.FromSeconds(30),
            () => "the workers table to list worker-a and worker-b and a cache hit ratio");
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard-done.png"), await browser.ScreenshotAsync());

        // The first build, chosen in the list: five bars, all built, by both workers.
        await browser.ExecuteAsync($"document.querySelector('#builds tr[data-build-id=\"{farm.BuildId}\"]').click();");
        await Wait.UntilAsync(
            async () =>
            {
                bars = (await browser.ExecuteAsync(
                    "return [...document.querySelectorAll('#timeline .step')].map(s => ({ status: s.dataset.status, worker: s.dataset.worker, phases: s.querySelectorAll('.seg').length }));"))?.AsArray();
                return bars?.Count == 5;
            },
            TimeSpan.FromSeconds(30),
            () => $"the first build's timeline with five bars; it shows {bars?.ToJsonString()}");
        Assert.All(bars!, b => Assert.Equal(("built", 5), ((string?)b!["status"], (int)b["phases"]!)));
        Assert.Equal(["worker-a", "worker-b"], bars!.Select(b => (string?)b!["worker"]).Distinct().Order());
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard-first-build.png"), await browser.ScreenshotAsync());
    }

    [Fact]
    public async Task The_dashboard_marks_the_critical_path_and_shows_steps_in_lanes_per_worker()
    {
        await using var browser = await WebDriver.StartAsync();
        var artifacts = Directory.CreateDirectory(Path.Combine(RepoPaths.RepoRoot, "artifacts", "telemetry")).FullName;

        // The fixture's build: two stages at once (one per worker), then a stage of three COPYs that waited for both.
        // The chain that set its duration is the last stage's three steps and whichever of the two it waited for longer.
        var timeline = (await farm.Api.GetFromJsonAsync<JsonObject>($"api/builds/{farm.BuildId}"))!;
        var steps = timeline["steps"]!.AsArray().Select(s => s!.AsObject()).ToDictionary(s => (string)s["stepId"]!);
        Assert.Equal(["s0/1", "s1/1", "s2/1", "s2/2", "s2/3"], steps.Keys.Order(StringComparer.Ordinal));
        var later = DateTimeOffset.Parse((string)steps["s0/1"]["finished"]!, CultureInfo.InvariantCulture) > DateTimeOffset.Parse((string)steps["s1/1"]["finished"]!, CultureInfo.InvariantCulture) ? "s0/1" : "s1/1";
        string[] critical = [.. new[] { later, "s2/1", "s2/2", "s2/3" }.Order(StringComparer.Ordinal)];
        Assert.Equal(critical, steps.Values.Where(s => (bool)s["critical"]!).Select(s => (string)s["stepId"]!).Order(StringComparer.Ordinal));
        Assert.Equal(["s0/1", "s1/1"], steps["s2/1"]["dependsOn"]!.AsArray().Select(d => (string?)d).Order(StringComparer.Ordinal));
        Assert.Equal(["s2/2"], steps["s2/3"]["dependsOn"]!.AsArray().Select(d => (string?)d));

        await browser.NavigateAsync(new Uri($"http://127.0.0.1:{farm.CoordinatorPort}/"));
        await Wait.UntilAsync(async () => (bool?)await browser.ExecuteAsync($"return !!document.querySelector('#builds tr[data-build-id=\"{farm.BuildId}\"]');") == true, TimeSpan.FromSeconds(30), () => $"the dashboard to list build {farm.BuildId}");
        await browser.ExecuteAsync($"document.querySelector('#builds tr[data-build-id=\"{farm.BuildId}\"]').click();");
        JsonArray? marked = null;
        await Wait.UntilAsync(
            async () => (marked = (await browser.ExecuteAsync("return [...document.querySelectorAll('#timeline .step[data-critical=\"true\"] .bar.critical')].map(b => b.dataset.stepId);"))?.AsArray())?.Count == 4,
            TimeSpan.FromSeconds(30),
            () => $"four steps marked on the critical path; marked {marked?.ToJsonString()}");
        Assert.Equal(critical, marked!.Select(m => (string?)m!).Order(StringComparer.Ordinal));
        Assert.Equal(1L, (long?)await browser.ExecuteAsync("return document.querySelectorAll('#timeline .step:not(.critical)').length;"));
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard-critical-path.png"), await browser.ScreenshotAsync());

        // Lanes: one row per worker, each holding the bars of the steps that worker built.
        await browser.ExecuteAsync("document.getElementById('lanes').click();");
        JsonArray? lanes = null;
        await Wait.UntilAsync(
            async () => (lanes = (await browser.ExecuteAsync("return [...document.querySelectorAll('#timeline .step.lane')].map(l => ({ lane: l.dataset.lane, steps: [...l.querySelectorAll('.bar')].map(b => b.dataset.stepId), critical: l.querySelectorAll('.bar.critical').length }));"))?.AsArray())?.Count == 2,
            TimeSpan.FromSeconds(30),
            () => $"two lanes, one per worker; got {lanes?.ToJsonString()}");
        foreach (var lane in lanes!)
        {
            var worker = (string)lane!["lane"]!;
            var expected = steps.Values.Where(s => (string?)s["worker"] == worker).Select(s => (string)s["stepId"]!).Order(StringComparer.Ordinal);
            Assert.Equal(expected, lane["steps"]!.AsArray().Select(x => (string?)x!).Order(StringComparer.Ordinal));
        }

        Assert.Equal(["worker-a", "worker-b"], lanes.Select(l => (string?)l!["lane"]).Order(StringComparer.Ordinal));
        Assert.Equal(4, lanes.Sum(l => (int)l!["critical"]!));
        await File.WriteAllBytesAsync(Path.Combine(artifacts, "dashboard-lanes.png"), await browser.ScreenshotAsync());
    }

    [Fact]
    public async Task A_build_submitted_as_a_rabbitmq_message_is_traced_under_the_publishers_span()
    {
        var buildId = Guid.NewGuid();
        string traceId;
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(new Uri($"rabbitmq://127.0.0.1/{farm.VirtualHost}"), h =>
        {
            h.Username("guest");
            h.Password("guest");
        }));
        await bus.StartAsync();
        try
        {
            // MassTransit writes the current span into the message only when its own source is listened to, as in the CLI.
            using var tracing = FarmTelemetry.StartTracing("farm-cli", farm.Otlp.Endpoint, "MassTransit");
            using var source = new ActivitySource(FarmTelemetry.Cli);
            using var publisher = source.StartActivity("farm build --queue", ActivityKind.Producer)!;
            traceId = publisher.TraceId.ToHexString();
            await bus.Publish(new SubmitBuild
            {
                BuildId = buildId,
                Dockerfile = TelemetryFarmFixture.Dockerfile,
                ContextDigest = farm.ContextDigest,
                ContextIndexDigest = farm.ContextIndexDigest,
                BuildArgs = new Dictionary<string, string> { ["BASE"] = farm.BaseImage },
            });
        }
        finally
        {
            await bus.StopAsync();
        }

        var status = await farm.WaitEndedAsync(buildId);
        Assert.True((string?)status["status"] == "succeeded", status.ToJsonString() + farm.Diagnostics());
        List<ReceivedSpan> builds = [];
        await Wait.UntilAsync(
            () => (builds = [.. farm.Otlp.Spans.Where(s => s.Scope == FarmTelemetry.Coordinator && s.Name == "build" && s["farm.build_id"] == buildId.ToString())]).Count == 1,
            TimeSpan.FromSeconds(60),
            () => $"the coordinator's build span of {buildId}");
        Assert.Equal(traceId, builds[0].TraceId);
    }

    [Fact]
    public async Task A_worker_appears_in_the_coordinators_worker_list_by_its_heartbeats_and_leaves_it_when_it_stops()
    {
        JsonArray? workers = null;
        async Task<bool> ListedAsync(string name)
        {
            workers = await farm.Api.GetFromJsonAsync<JsonArray>("api/workers");
            return workers!.Any(w => (string?)w!["name"] == name);
        }

        await using var extra = farm.StartWorker("worker-c");
        await Wait.UntilAsync(() => ListedAsync("worker-c"), TimeSpan.FromSeconds(90), () => $"worker-c in /api/workers; it lists {workers?.ToJsonString()}" + farm.Diagnostics());
        var listed = workers!.Single(w => (string?)w!["name"] == "worker-c")!;
        Assert.Equal((1, 0, 1), ((int)listed["slots"]!, (int)listed["busySlots"]!, (int)listed["freeSlots"]!));

        // Stop it once it has started (it consumes jobs), as an operator would: a process killed while it starts sends
        // no stopping heartbeat and is forgotten by timeout instead.
        await Wait.UntilAsync(async () => await farm.ConsumersAsync(WorkerHosting.QueueName) == 3, TimeSpan.FromSeconds(60), () => "worker-c to consume " + WorkerHosting.QueueName + farm.Diagnostics());

        // The coordinator forgets a silent worker only after ten minutes here: prompt removal is the stopping heartbeat's.
        await extra.StopAsync();
        await Wait.UntilAsync(async () => !await ListedAsync("worker-c"), TimeSpan.FromSeconds(30), () => $"worker-c gone from /api/workers after it stopped; it lists {workers?.ToJsonString()}");
        Assert.True(await ListedAsync("worker-a") && await ListedAsync("worker-b"), workers?.ToJsonString());
    }

    /// <summary>The span ids above <paramref name="span"/>, nearest first, as far as the trace holds them.</summary>
    /// <summary>Whether <paramref name="trace"/> holds the CLI's span <paramref name="cliSpan"/> and a span matching <paramref name="descendant"/> below it.</summary>
    private static bool DescendsFromCli(List<ReceivedSpan> trace, string cliSpan, Func<ReceivedSpan, bool> descendant)
    {
        var byId = trace.GroupBy(s => s.SpanId).ToDictionary(g => g.Key, g => g.First());
        return trace.SingleOrDefault(s => s.Service == "farm-cli" && s.Name == cliSpan) is { } cli
            && trace.Where(descendant).Any(s => Ancestors(s, byId).Contains(cli.SpanId));
    }

    private static List<string> Ancestors(ReceivedSpan span, Dictionary<string, ReceivedSpan> byId)
    {
        var ancestors = new List<string>();
        for (var parent = span.ParentSpanId; parent.Length > 0 && parent != new string('0', 16); parent = byId.TryGetValue(parent, out var p) ? p.ParentSpanId : string.Empty)
        {
            ancestors.Add(parent);
        }

        return ancestors;
    }

    private static async Task<string> MetricsAsync(int port)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
    }

    /// <summary>The value of the first sample of <paramref name="metric"/> whose labels contain <paramref name="label"/>; null when none.</summary>
    private static double? Value(string exposition, string metric, string? label = null)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith('#') || !(line.StartsWith(metric + "{", StringComparison.Ordinal) || line.StartsWith(metric + " ", StringComparison.Ordinal)))
            {
                continue;
            }

            var labelsEnd = line.LastIndexOf('}');
            var labels = labelsEnd < 0 ? string.Empty : line[..labelsEnd];
            if (label is not null && !labels.Contains(label, StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line[(labelsEnd + 1)..].Trim().Split(' ');
            return double.Parse(fields[0], CultureInfo.InvariantCulture);
        }

        return null;
    }

    /// <summary>An HTTP endpoint a RUN step polls (RUN --network=host) until the test opens it: holds a build running without sleeping on time.</summary>
    private sealed class Gate : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Task _loop;
        private volatile bool _open;

        private Gate(int port)
        {
            Url = $"http://127.0.0.1:{port}/gate";
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _loop = Task.Run(ServeAsync);
        }

        public string Url { get; }

        public static Gate Start() => new(FreePorts.Tcp());

        public void Open() => _open = true;

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                context.Response.StatusCode = _open ? 200 : 503;
                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _loop;
            _listener.Close();
        }
    }
}
