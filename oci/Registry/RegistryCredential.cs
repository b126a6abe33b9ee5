namespace Farm.Oci.Registry;

/// <summary>A user name and password (or personal access token) for one registry.</summary>
/// <remarks>The secret is never part of <see cref="ToString"/>, so a credential can be logged or put in an exception safely.</remarks>
public sealed record RegistryCredential
{
    public required string Username { get; init; }

    public required string Password { get; init; }

    public override string ToString() => $"RegistryCredential {{ Username = {Username}, Password = *** }}";
}

/// <summary>Finds the credential to use for a registry.</summary>
public interface ICredentialProvider
{
    /// <summary>The credential for <paramref name="registry"/> (as written in references, e.g. <c>127.0.0.1:5101</c>), or null for anonymous access.</summary>
    ValueTask<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken);
}

/// <summary>Credentials given in code, keyed by registry.</summary>
public sealed class StaticCredentialProvider(IReadOnlyDictionary<string, RegistryCredential> credentials) : ICredentialProvider
{
    public static ICredentialProvider Anonymous { get; } = new StaticCredentialProvider(new Dictionary<string, RegistryCredential>());

    public static ICredentialProvider For(string registry, RegistryCredential credential) =>
        new StaticCredentialProvider(new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase) { [registry] = credential });

    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken) =>
        ValueTask.FromResult(credentials.TryGetValue(registry, out var credential) ? credential : null);
}
