using Farm.Testing;

namespace Farm.Telemetry.Tests;

/// <summary>
/// The alert rules Prometheus loads (infra/prometheus-alerts.yml), checked as an operator would before deploying
/// them: Debian's <c>promtool</c> validates the configuration and its rule files, and runs the rules' unit tests
/// (infra/prometheus-alerts.test.yml), in which made-up series make each alert fire, or not, when it should. That the
/// rules and the dashboard's queries evaluate against a real farm's metrics is checked in
/// <see cref="TelemetryFarmTests"/>.
/// </summary>
public sealed class AlertRulesTests
{
    private static readonly string Infra = Path.Combine(RepoPaths.RepoRoot, "infra");

    [Fact]
    public async Task Promtool_accepts_the_prometheus_configuration_with_its_five_alert_rules()
    {
        var output = await Tool.RunAsync("promtool", "check", "config", Path.Combine(Infra, "prometheus.yml"));

        Assert.Contains("SUCCESS: 1 rule files found", output, StringComparison.Ordinal);
        Assert.Contains("SUCCESS: 5 rules found", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_alert_fires_on_the_series_it_is_for_and_stays_quiet_on_the_others()
    {
        // A failed expectation exits non-zero, and Tool.RunAsync fails with promtool's account of it.
        var output = await Tool.RunAsync("promtool", "test", "rules", Path.Combine(Infra, "prometheus-alerts.test.yml"));

        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
        var tested = File.ReadAllText(Path.Combine(Infra, "prometheus-alerts.test.yml"));
        foreach (var alert in new[] { "FarmQueueGrowing", "FarmWorkerLost", "FarmWorkerDown", "FarmBuildFailureRate", "FarmCacheHitRatioDropping" })
        {
            Assert.Contains($"alertname: {alert}", tested, StringComparison.Ordinal);
        }
    }
}
