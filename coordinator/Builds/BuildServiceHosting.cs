using Farm.Oci.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Farm.Coordinator.Builds;

/// <summary>Registers the build service: options (<c>Farm:Builds</c>), the registry, the blob store locator and the service.</summary>
public static class BuildServiceHosting
{
    public static IServiceCollection AddFarmBuildService(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<BuildServiceOptions>().BindConfiguration(BuildServiceOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<BuildRegistry>();
        services.TryAddSingleton(_ => new BlobStoreLocator());
        services.TryAddSingleton<BuildService>();
        return services;
    }
}
