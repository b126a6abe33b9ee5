using Farm.Oci.Registry;

namespace Farm.Cli.Remote;

/// <summary>
/// How the CLI's own registry traffic (a remote build's context upload, <c>farm pull/push</c>, the local farm's
/// <c>--push</c>, <c>farm login</c>) reaches registries: <c>FARM_INSECURE_REGISTRIES</c>, a comma-separated list of
/// <c>HOST:PORT</c> that may be spoken to over plain HTTP when they do not answer TLS (Docker's
/// <c>--insecure-registry</c>; loopback always may). The coordinator and workers have the same list as
/// <c>Farm:Registries:Insecure</c>.
/// </summary>
internal static class CliRegistryOptions
{
    public const string InsecureVariable = "FARM_INSECURE_REGISTRIES";

    /// <summary>The settings from the environment; the defaults when the variable is unset.</summary>
    public static RegistryClientOptions FromEnvironment() => new()
    {
        InsecureRegistries = (Environment.GetEnvironmentVariable(InsecureVariable) ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
    };
}
