using Farm.Oci.Registry;

namespace Farm.Worker;

/// <summary>
/// How a farm process (coordinator or worker) reaches registries, bound from <c>Farm:Registries</c>: the blob store,
/// base images and push destinations all go through the same <see cref="RegistryClientOptions"/>.
/// </summary>
public sealed class RegistryAccessOptions
{
    public const string Section = "Farm:Registries";

    /// <summary>
    /// Registries (<c>HOST:PORT</c>) that may be spoken to over plain HTTP when they do not answer TLS, as Docker's
    /// <c>insecure-registries</c>: a registry on another machine of a private network without a certificate. Loopback
    /// registries always may. Environment form: <c>Farm__Registries__Insecure__0=10.0.0.5:5000</c>.
    /// </summary>
    public List<string> Insecure { get; set; } = [];

    /// <summary>The registry client settings these options stand for.</summary>
    public RegistryClientOptions ToClientOptions() => new() { InsecureRegistries = [.. Insecure] };
}
