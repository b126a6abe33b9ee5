using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Farm.Coordinator.Tests;
using Farm.Oci.Net;
using Farm.Testing;

namespace Farm.Telemetry.Tests;

/// <summary>
/// Debian's <c>prometheus</c> (infra/install.sh) on a free loopback port, scraping the given targets every second with
/// a configuration generated like the one infra/cluster.sh writes; its data lives in a temporary directory.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private PrometheusServer(Process process, string directory, HttpClient api)
    {
        _process = process;
        _directory = directory;
        Api = api;
    }

    public HttpClient Api { get; }

    /// <param name="jobs">Job name to its targets (<c>127.0.0.1:port</c>).</param>
    /// <param name="ruleFiles">Rule files to load and evaluate every second.</param>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyDictionary<string, IReadOnlyList<string>> jobs, IReadOnlyList<string>? ruleFiles = null)
    {
        if (!File.Exists("/usr/bin/prometheus"))
        {
            throw new InvalidOperationException("Prometheus is required: apt-get install prometheus (or run infra/install.sh).");
        }

        var directory = Directory.CreateTempSubdirectory("farm-prometheus-").FullName;
        var config = new StringBuilder("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n");
        if (ruleFiles is { Count: > 0 })
        {
            config.Append(CultureInfo.InvariantCulture, $"rule_files: [{string.Join(", ", ruleFiles.Select(f => $"'{f}'"))}]\n");
        }

        config.Append("scrape_configs:\n");
        foreach (var (job, targets) in jobs)
        {
            config.Append(CultureInfo.InvariantCulture, $"  - job_name: {job}\n    static_configs:\n      - targets: [{string.Join(", ", targets.Select(t => $"'{t}'"))}]\n");
        }

        var file = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(file, config.ToString());
        var port = FreePorts.Tcp();
        var start = new ProcessStartInfo("/usr/bin/prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add($"--config.file={file}");
        start.ArgumentList.Add($"--storage.tsdb.path={Path.Combine(directory, "data")}");
        start.ArgumentList.Add($"--web.listen-address=127.0.0.1:{port}");
        var process = Process.Start(start) ?? throw new InvalidOperationException("prometheus did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, directory, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) });
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    using var ready = await server.Api.GetAsync("-/ready");
                    return ready.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(60),
            () => "prometheus to answer /-/ready");
        return server;
    }

    /// <summary>An instant query's result vector: each series' labels and value.</summary>
    public async Task<List<(JsonObject Labels, double Value)>> QueryAsync(string query)
    {
        var answer = await Api.GetFromJsonAsync<JsonObject>($"api/v1/query?query={Uri.EscapeDataString(query)}");
        return [.. answer!["data"]!["result"]!.AsArray().Select(r => (r!["metric"]!.AsObject(), double.Parse((string)r["value"]![1]!, CultureInfo.InvariantCulture)))];
    }

    /// <summary>The loaded alerting rules: each one's name, health (<c>ok</c>, <c>err</c>, <c>unknown</c> before its first evaluation) and last error.</summary>
    public async Task<List<(string Name, string Health, string? Error)>> AlertRulesAsync()
    {
        var answer = await Api.GetFromJsonAsync<JsonObject>("api/v1/rules?type=alert");
        return [.. answer!["data"]!["groups"]!.AsArray().SelectMany(g => g!["rules"]!.AsArray())
            .Select(r => ((string)r!["name"]!, (string)r["health"]!, (string?)r["lastError"]))];
    }

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
