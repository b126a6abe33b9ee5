using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// The coordinator's probes, for an orchestrator and for people: <c>/livez</c> (the process runs and serves HTTP),
/// <c>/readyz</c> (every health check passes: the bus is connected, Redis and this silo's membership are sound, and the
/// process is not stopping) and <c>/healthz</c> (as before: every check but the stopping one). All three are anonymous.
/// </summary>
public static class CoordinatorProbes
{
    /// <summary>200 while the process serves HTTP; runs no check, so a Redis outage never gets the process restarted.</summary>
    public const string LivenessPath = "/livez";

    /// <summary>200 while the coordinator should get traffic; 503 while a check fails or the process is stopping.</summary>
    public const string ReadinessPath = "/readyz";

    /// <summary>The health of the silo and its services, as it always was.</summary>
    public const string HealthPath = "/healthz";

    /// <summary>Tags the checks only <see cref="ReadinessPath"/> runs.</summary>
    public const string ReadinessOnlyTag = "readiness-only";

    /// <summary>Adds the check that makes <see cref="ReadinessPath"/> fail once the process is stopping.</summary>
    public static IHealthChecksBuilder AddFarmCoordinatorProbes(this IHealthChecksBuilder checks) =>
        checks.AddCheck<StoppingHealthCheck>("stopping", tags: [ReadinessOnlyTag]);

    /// <summary>Maps the three endpoints, anonymous (a kubelet has no token).</summary>
    public static IEndpointRouteBuilder MapFarmCoordinatorProbes(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks(LivenessPath, new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous();
        endpoints.MapHealthChecks(ReadinessPath).AllowAnonymous();
        endpoints.MapHealthChecks(HealthPath, new HealthCheckOptions { Predicate = c => !c.Tags.Contains(ReadinessOnlyTag) }).AllowAnonymous();
        return endpoints;
    }

    /// <summary>Unhealthy from SIGTERM on, so a load balancer stops sending requests while the silo hands its builds over.</summary>
    private sealed class StoppingHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested
                ? HealthCheckResult.Unhealthy("the coordinator is stopping")
                : HealthCheckResult.Healthy("running"));
    }
}
