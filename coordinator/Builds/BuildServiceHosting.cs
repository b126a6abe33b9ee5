using Farm.Coordinator.Grains;
using Farm.Oci.Stores;
using Farm.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Registers the build service: options (<c>Farm:Builds</c>), the registry, the shared event stream, the blob store
/// locator and the service (also a participant in the silo's lifecycle).
/// </summary>
public static class BuildServiceHosting
{
    public static IServiceCollection AddFarmBuildService(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<BuildServiceOptions>().BindConfiguration(BuildServiceOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<BuildRegistry>();
        services.AddOptions<RegistryAccessOptions>().BindConfiguration(RegistryAccessOptions.Section);
        services.TryAddSingleton(sp => new BlobStoreLocator(sp.GetRequiredService<IOptions<RegistryAccessOptions>>().Value.ToClientOptions()));
        services.TryAddSingleton<ILayerBuilds, GrainLayerBuilds>();
        services.TryAddSingleton<BuildEventStream>();
        services.TryAddSingleton(_ => Auth.RegistryCredentials.None);
        services.TryAddSingleton<Auth.BuildSecrets>();
        services.TryAddSingleton<BuildService>();
        // Builds running on a silo stop before the silo does, so nothing they report after reaches their grains.
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(s => s.GetRequiredService<BuildService>());
        return services;
    }
}
