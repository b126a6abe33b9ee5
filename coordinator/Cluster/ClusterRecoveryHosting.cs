using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Cluster;

/// <summary>What a coordinator on Redis adds to ride out Redis faults and dead silos (docs/architecture.md, "Failure model").</summary>
public static class ClusterRecoveryHosting
{
    /// <summary>
    /// Wraps the Redis membership table (<see cref="RecoveringMembershipTable"/>; call after <c>UseRedisClustering</c>),
    /// and adds <see cref="ClusterHealth"/>, the <see cref="RedisLossMonitor"/> and <see cref="BuildTakeover"/>.
    /// </summary>
    public static IServiceCollection AddFarmClusterRecovery(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var table = services.LastOrDefault(d => d.ServiceType == typeof(IMembershipTable))
            ?? throw new InvalidOperationException("No membership table is registered: call UseRedisClustering first.");
        services.Remove(table);
        services.AddSingleton<IMembershipTable>(sp => new RecoveringMembershipTable(
            Create(sp, table),
            sp.GetRequiredService<ClusterHealth>(),
            sp.GetRequiredService<ILocalSiloDetails>(),
            sp.GetRequiredService<ILogger<RecoveringMembershipTable>>()));
        services.AddSingleton<ClusterHealth>();
        services.AddHostedService<RedisLossMonitor>();
        services.AddHostedService<BuildTakeover>();
        return services;
    }

    private static IMembershipTable Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (IMembershipTable)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));
}
