using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Oci.Registry;

/// <summary>
/// Reads and writes the <c>auths</c> section of Docker's client configuration (<c>~/.docker/config.json</c>, or
/// <c>$DOCKER_CONFIG/config.json</c>), so <c>farm login</c> and <c>docker login</c> share credentials.
/// </summary>
/// <remarks>
/// Entries are keyed by host (<c>127.0.0.1:5101</c>) or by URL (<c>https://index.docker.io/v1/</c>); an entry
/// holds a base64 <c>auth</c> of <c>user:password</c>, or <c>username</c> and <c>password</c>. As docker, a registry
/// named in <c>credHelpers</c>, else every registry when <c>credsStore</c> is set, is asked of that credential helper
/// (<see cref="CredentialHelper"/>) instead, and <c>farm login</c> stores through it, leaving only an empty
/// <c>auths</c> entry in the file. Writes keep every other field of the file.
/// https://docs.docker.com/reference/cli/docker/login/#credential-stores
/// </remarks>
public sealed class DockerConfig : ICredentialProvider
{
    private const string DockerHubKey = "https://index.docker.io/v1/";

    public DockerConfig(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Path = path;
    }

    /// <summary>The config file this instance reads and writes.</summary>
    public string Path { get; }

    /// <summary>The file Docker itself uses: <c>$DOCKER_CONFIG/config.json</c>, else <c>~/.docker/config.json</c>.</summary>
    public static DockerConfig Default()
    {
        var dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG");
        if (string.IsNullOrEmpty(dir))
        {
            dir = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
        }

        return new DockerConfig(System.IO.Path.Combine(dir, "config.json"));
    }

    public async ValueTask<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken)
    {
        var root = await ReadAsync(cancellationToken).ConfigureAwait(false);
        if (HelperFor(root, registry) is { } helper)
        {
            return await helper.GetAsync(KeyFor(registry), cancellationToken).ConfigureAwait(false);
        }

        if (root?["auths"] is not JsonObject auths)
        {
            return null;
        }

        var wanted = NormalizeHost(registry);
        foreach (var (key, value) in auths)
        {
            if (NormalizeHost(key) == wanted && value is JsonObject entry && Decode(entry) is { } credential)
            {
                return credential;
            }
        }

        return null;
    }

    /// <summary>
    /// Stores <paramref name="credential"/> for <paramref name="registry"/>, replacing any entry for the same host: in
    /// the registry's credential helper when the config names one (the file then keeps an empty entry, as docker's),
    /// else in the file.
    /// </summary>
    /// <returns>Where it went, for the user: the file's path or <c>docker-credential-NAME</c>.</returns>
    public async Task<string> LoginAsync(string registry, RegistryCredential credential, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(credential);
        var root = await ReadAsync(cancellationToken).ConfigureAwait(false) ?? [];
        var helper = HelperFor(root, registry);
        if (helper is not null)
        {
            await helper.StoreAsync(KeyFor(registry), credential, cancellationToken).ConfigureAwait(false);
        }

        var auths = root["auths"] as JsonObject ?? (JsonObject)(root["auths"] = new JsonObject());
        RemoveEntries(auths, registry);
        auths[KeyFor(registry)] = helper is not null
            ? new JsonObject()
            : new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}")) };
        await WriteAsync(root, cancellationToken).ConfigureAwait(false);
        return helper is not null ? $"docker-credential-{helper.Name}" : Path;
    }

    /// <summary>Removes every entry for <paramref name="registry"/>; true when there was one.</summary>
    public async Task<bool> LogoutAsync(string registry, CancellationToken cancellationToken)
    {
        var root = await ReadAsync(cancellationToken).ConfigureAwait(false);
        var erased = HelperFor(root, registry) is { } helper && await helper.EraseAsync(KeyFor(registry), cancellationToken).ConfigureAwait(false);
        if (root?["auths"] is not JsonObject auths || !RemoveEntries(auths, registry))
        {
            return erased;
        }

        await WriteAsync(root!, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>docker's choice: the registry's <c>credHelpers</c> entry, else <c>credsStore</c>, else none (the file).</summary>
    private CredentialHelper? HelperFor(JsonObject? root, string registry)
    {
        var host = NormalizeHost(registry);
        if (root?["credHelpers"] is JsonObject helpers)
        {
            foreach (var (key, value) in helpers)
            {
                if (NormalizeHost(key) == host && value is JsonValue v && v.TryGetValue<string>(out var name) && name.Length > 0)
                {
                    return CredentialHelper.Named(name, Path);
                }
            }
        }

        return root?["credsStore"] is JsonValue store && store.TryGetValue<string>(out var storeName) && storeName.Length > 0
            ? CredentialHelper.Named(storeName, Path)
            : null;
    }

    /// <summary>The host part of an <c>auths</c> key or registry name, with Docker Hub's aliases folded into <c>docker.io</c>.</summary>
    internal static string NormalizeHost(string keyOrRegistry)
    {
        var host = keyOrRegistry.Trim();
        var scheme = host.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            host = host[(scheme + 3)..];
        }

        var slash = host.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            host = host[..slash];
        }

        host = host.ToLowerInvariant();
        return host is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? ImageReference.DockerHub : host;
    }

    private static string KeyFor(string registry) =>
        NormalizeHost(registry) == ImageReference.DockerHub ? DockerHubKey : NormalizeHost(registry);

    private static bool RemoveEntries(JsonObject auths, string registry)
    {
        var host = NormalizeHost(registry);
        var keys = auths.Select(p => p.Key).Where(k => NormalizeHost(k) == host).ToList();
        foreach (var key in keys)
        {
            auths.Remove(key);
        }

        return keys.Count > 0;
    }

    private static RegistryCredential? Decode(JsonObject entry)
    {
        if (entry["auth"] is JsonValue authValue && authValue.TryGetValue<string>(out var auth) && auth.Length > 0)
        {
            string text;
            try
            {
                text = Encoding.UTF8.GetString(Convert.FromBase64String(auth));
            }
            catch (FormatException)
            {
                return null;
            }

            var colon = text.IndexOf(':', StringComparison.Ordinal);
            return colon > 0 ? new RegistryCredential { Username = text[..colon], Password = text[(colon + 1)..] } : null;
        }

        var user = (string?)entry["username"];
        var password = (string?)entry["password"];
        return !string.IsNullOrEmpty(user) && password is not null ? new RegistryCredential { Username = user, Password = password } : null;
    }

    private async Task<JsonObject?> ReadAsync(CancellationToken cancellationToken)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(Path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DockerConfigException(Path, $"The Docker config {Path} could not be read: {e.Message}. Check its permissions, or point DOCKER_CONFIG at another directory.", e);
        }

        try
        {
            return bytes.Length == 0 ? null : JsonNode.Parse(bytes) as JsonObject
                ?? throw new DockerConfigException(Path, $"The Docker config {Path} is not a JSON object. Fix or remove it, then run farm login again.");
        }
        catch (JsonException e)
        {
            throw new DockerConfigException(Path, $"The Docker config {Path} is not valid JSON ({e.Message}). Fix or remove it, then run farm login again.", e);
        }
    }

    private async Task WriteAsync(JsonObject root, CancellationToken cancellationToken)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        var temp = System.IO.Path.Combine(dir, $".config.json.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(dir);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                // The file holds passwords: readable by its owner only, from the moment it exists.
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            var stream = new FileStream(temp, options);
            await using (stream.ConfigureAwait(false))
            {
                var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                await using (writer.ConfigureAwait(false))
                {
                    root.WriteTo(writer);
                    await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            File.Move(temp, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp);
            throw new DockerConfigException(Path, $"The Docker config {Path} could not be written: {e.Message}. Check the directory's permissions.", e);
        }
    }
}
