using System.Text.Json;

namespace Farm.Oci.Registry;

/// <summary>
/// How a client hands a farm its registry credentials for one build: a request header (never the body, so they never
/// become part of the stored submission) holding base64url of <c>{"HOST": {"username": "...", "password": "..."}}</c>.
/// The CLI writes it; the coordinator reads it (coordinator/Auth/RegistryCredentials.cs).
/// </summary>
public static class PushCredentialsHeader
{
    /// <summary>The header's name.</summary>
    public const string Name = "Farm-Registry-Auth";

    /// <summary>The header's value for <paramref name="credentials"/> (registry host to credential).</summary>
    public static string Encode(IReadOnlyDictionary<string, RegistryCredential> credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (registry, credential) in credentials)
            {
                writer.WriteStartObject(registry);
                writer.WriteString("username", credential.Username);
                writer.WriteString("password", credential.Password);
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        return Convert.ToBase64String(buffer.ToArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
