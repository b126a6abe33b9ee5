using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Farm.Coordinator.Cluster;

/// <summary>
/// What this coordinator knows about its footing in the cluster: whether Redis answers, whether the membership table
/// can be read and written, and whether it is repairing what Redis lost. <c>/healthz</c> reports it
/// (<see cref="ClusterHealthCheck"/>), so a load balancer or supervisor stops sending work to a coordinator that
/// cannot serve.
/// </summary>
public sealed class ClusterHealth
{
    private readonly Lock _lock = new();
    private string? _redis;
    private string? _membership;
    private string? _recovery;

    /// <summary>What keeps this coordinator from serving, or null when nothing does.</summary>
    public string? Fault
    {
        get
        {
            lock (_lock)
            {
                return _redis ?? _recovery ?? _membership;
            }
        }
    }

    internal bool MembershipFaulted
    {
        get
        {
            lock (_lock)
            {
                return _membership is not null;
            }
        }
    }

    internal void RedisAnswered() => Set(ref _redis, null);

    internal void RedisFailed(string error) => Set(ref _redis, "Redis does not answer: " + error);

    internal void MembershipSucceeded() => Set(ref _membership, null);

    internal void MembershipFailed(string error) => Set(ref _membership, "the membership table cannot be used: " + error);

    internal void Recovering(string what) => Set(ref _recovery, what);

    internal void Recovered() => Set(ref _recovery, null);

    private void Set(ref string? field, string? value)
    {
        lock (_lock)
        {
            field = value;
        }
    }
}

/// <summary>
/// <c>/healthz</c>'s view of the cluster: unhealthy while Redis does not answer, while the membership table is
/// broken or being rebuilt, or while this silo is not an active member. Healthy without Redis (one localhost silo).
/// </summary>
public sealed class ClusterHealthCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (services.GetService<ClusterHealth>() is not { } health)
        {
            return Task.FromResult(HealthCheckResult.Healthy("localhost clustering"));
        }

        if (health.Fault is { } fault)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(fault));
        }

        var silo = services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        var status = services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.GetSiloStatus(silo);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy($"this silo is {status} in the cluster"));
    }
}
