using System.Collections.Concurrent;
using System.Text.Json;
using Farm.Contracts;
using Farm.Oci.Registry;
using Microsoft.Extensions.Configuration;

namespace Farm.Coordinator.Auth;

/// <summary>
/// Which registry credentials each build pushes and pulls with. A build of a tenant (auth on) uses its tenant's
/// Docker config (<c>Farm:Coordinator:Tenants:TENANT:RegistryAuthFile</c>) and the credentials its client passed for
/// this build only, never the coordinator's own; a build without a tenant (auth off, the local farm) uses the
/// coordinator's own, or the ones passed with it. The farm's cache store is always the farm's: that is not this class's
/// business (<see cref="Oci.Stores.BlobStoreLocator"/>).
/// </summary>
/// <remarks>
/// Credentials passed with a build live here, in this process's memory, from the submission until its run on this
/// coordinator ends, and nowhere else: not in the submission the grain stores (it keeps only the registry names, in
/// <see cref="SubmitBuild.PushCredentialRegistries"/>), not in a message, Redis, an event or a log. A coordinator
/// that resumes such a build does not have them, and fails it with FARM4241 rather than push with other credentials.
/// </remarks>
public sealed class RegistryCredentials
{
    /// <summary>The configuration section whose children are tenants: <c>Farm:Coordinator:Tenants:acme:RegistryAuthFile</c>.</summary>
    public const string Section = "Farm:Coordinator:Tenants";

    /// <summary>Passed credentials never outlive this, even when their build never ran here (its grain refused it).</summary>
    private static readonly TimeSpan MaxHold = TimeSpan.FromHours(24);

    private readonly ConcurrentDictionary<Guid, Held> _held = new();
    private readonly IReadOnlyDictionary<string, string> _tenantFiles;
    private readonly TimeProvider _time;

    /// <param name="tenantFiles">Tenant name to the Docker config file of its registry credentials.</param>
    /// <param name="time">The clock of <see cref="MaxHold"/>.</param>
    public RegistryCredentials(IReadOnlyDictionary<string, string> tenantFiles, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(tenantFiles);
        _tenantFiles = new Dictionary<string, string>(tenantFiles, StringComparer.Ordinal);
        _time = time ?? TimeProvider.System;
    }

    /// <summary>No tenant has credentials configured.</summary>
    public static RegistryCredentials None => new(new Dictionary<string, string>());

    /// <summary>
    /// Reads <see cref="Section"/>, checking that every tenant's file is a readable Docker config (the files are read
    /// again at each use, so an operator's change applies to the next build without a restart).
    /// </summary>
    /// <exception cref="TenantRegistrySettingsException">A file is missing, unreadable or not a Docker config (FARM4243).</exception>
    public static RegistryCredentials Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tenant in configuration.GetSection(Section).GetChildren())
        {
            if (tenant["RegistryAuthFile"] is not { Length: > 0 } path)
            {
                continue;
            }

            var setting = $"{Section}:{tenant.Key}:RegistryAuthFile";
            if (!File.Exists(path))
            {
                throw new TenantRegistrySettingsException($"{setting} names {path}, which does not exist. Create it (a Docker config.json with \"auths\" per registry host), or remove the setting.");
            }

            try
            {
                // Any host: this parses the whole file, and finds nothing or an entry.
                _ = new DockerConfig(path).GetCredentialAsync("farm.invalid", CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            catch (DockerConfigException e)
            {
                throw new TenantRegistrySettingsException($"{setting} names {path}, which is not a readable Docker config.json: {e.Message}", e);
            }

            files[tenant.Key] = path;
        }

        return new RegistryCredentials(files);
    }

    /// <summary>The tenants with a registry auth file.</summary>
    public IReadOnlyCollection<string> Tenants => [.. _tenantFiles.Keys];

    /// <summary>How many builds' passed credentials this coordinator holds now.</summary>
    public int HeldCount => _held.Count;

    /// <summary>Keeps the credentials passed with build <paramref name="buildId"/> until <see cref="Release"/>; false when it holds some already.</summary>
    public bool Hold(Guid buildId, IReadOnlyDictionary<string, RegistryCredential> passed)
    {
        ArgumentNullException.ThrowIfNull(passed);
        var now = _time.GetUtcNow();
        foreach (var (id, held) in _held)
        {
            if (now - held.Since > MaxHold)
            {
                _held.TryRemove(id, out _);
            }
        }

        return _held.TryAdd(buildId, new Held(new Dictionary<string, RegistryCredential>(passed, StringComparer.OrdinalIgnoreCase), now));
    }

    /// <summary>Forgets the credentials passed with build <paramref name="buildId"/>.</summary>
    public void Release(Guid buildId) => _held.TryRemove(buildId, out _);

    /// <summary>
    /// The credentials build <paramref name="submission"/> uses, or null for the farm's own (no tenant, nothing passed).
    /// </summary>
    /// <exception cref="PushCredentialsLostException">Credentials were passed with the build to another coordinator (FARM4241).</exception>
    public BuildRegistryAccess? For(SubmitBuild submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        var passed = _held.TryGetValue(submission.BuildId, out var held) ? held.Credentials : null;
        var lost = submission.PushCredentialRegistries.Where(r => passed is null || !passed.ContainsKey(r)).ToList();
        if (lost.Count > 0)
        {
            throw new PushCredentialsLostException(submission.BuildId, lost);
        }

        if (submission.Tenant is null && passed is null)
        {
            return null;
        }

        var tenantFile = submission.Tenant is { } tenant && _tenantFiles.TryGetValue(tenant, out var path) ? new DockerConfig(path) : null;
        // Without a tenant (auth off), what was not passed goes with the coordinator's own, as before.
        var fallback = submission.Tenant is null ? DockerConfig.Default() : null;
        return new BuildRegistryAccess(submission.BuildId, submission.Tenant, passed ?? new Dictionary<string, RegistryCredential>(), tenantFile, fallback);
    }

    private sealed record Held(IReadOnlyDictionary<string, RegistryCredential> Credentials, DateTimeOffset Since);
}

/// <summary>Where a build's credential for a registry comes from.</summary>
public enum RegistryCredentialSource
{
    /// <summary>None: the registry is asked anonymously.</summary>
    None,

    /// <summary>Passed by the client with this build (<c>farm build --push</c>).</summary>
    Passed,

    /// <summary>The tenant's registry auth file on the farm.</summary>
    Tenant,

    /// <summary>The coordinator's own (only for builds without a tenant).</summary>
    Farm,
}

/// <summary>One build's registry credentials: an <see cref="ICredentialProvider"/> for its push targets and base images.</summary>
public sealed class BuildRegistryAccess : ICredentialProvider
{
    private readonly IReadOnlyDictionary<string, RegistryCredential> _passed;
    private readonly DockerConfig? _tenantFile;
    private readonly DockerConfig? _fallback;

    internal BuildRegistryAccess(Guid buildId, string? tenant, IReadOnlyDictionary<string, RegistryCredential> passed, DockerConfig? tenantFile, DockerConfig? fallback)
    {
        BuildId = buildId;
        Tenant = tenant;
        _passed = passed;
        _tenantFile = tenantFile;
        _fallback = fallback;
    }

    public Guid BuildId { get; }

    /// <summary>The build's tenant; null on a coordinator without auth.</summary>
    public string? Tenant { get; }

    public async ValueTask<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken) =>
        (await FindAsync(registry, cancellationToken).ConfigureAwait(false)).Credential;

    /// <summary>
    /// The error a tenant's build reports when <paramref name="registry"/> refused <paramref name="what"/> (a
    /// <see cref="RegistryAuthenticationException"/> or <see cref="RegistryAccessDeniedException"/>): FARM4240, saying
    /// which credentials were used and what to configure. Other errors, and refusals of builds without a tenant that
    /// used the coordinator's own credentials, are returned as they are.
    /// </summary>
    public async Task<Exception> ExplainAsync(Exception error, string registry, string what, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (error is not (RegistryAuthenticationException or RegistryAccessDeniedException))
        {
            return error;
        }

        var (source, credential) = await FindAsync(registry, cancellationToken).ConfigureAwait(false);
        if (source == RegistryCredentialSource.Farm || (Tenant is null && source == RegistryCredentialSource.None))
        {
            return error;
        }

        var denied = error is RegistryAccessDeniedException;
        var setting = $"{RegistryCredentials.Section}:{Tenant}:RegistryAuthFile";
        var message = source switch
        {
            RegistryCredentialSource.Passed => denied
                ? $"Registry {registry} does not allow user '{credential!.Username}' (the credentials passed with build {BuildId}) to {what}. Ask the registry's administrator for access, or push somewhere that user may."
                : $"Registry {registry} refused the credentials of user '{credential!.Username}' passed with build {BuildId} to {what}. Run `farm login {registry}` again, then build again.",
            RegistryCredentialSource.Tenant => denied
                ? $"Registry {registry} does not allow tenant {Tenant}'s user '{credential!.Username}' to {what}. Ask the registry's administrator for access, or the farm's operator for other credentials in {setting}."
                : $"Registry {registry} refused tenant {Tenant}'s credentials (user '{credential!.Username}') to {what}. Ask the farm's operator to fix the entry for {registry} in {setting}.",
            _ => $"Registry {registry} refused anonymous access to {what}: tenant {Tenant} has no credentials for {registry} on this farm, and a tenant's builds use only their own, never the farm's. " +
                $"Ask the farm's operator to add {registry} to the tenant's registry auth file ({setting}), or run `farm login {registry}` and build again with --push (the CLI passes your credentials for the push target with the build).",
        };
        return new TenantRegistryRefusedException(registry, message, error);
    }

    private async ValueTask<(RegistryCredentialSource Source, RegistryCredential? Credential)> FindAsync(string registry, CancellationToken cancellationToken)
    {
        if (_passed.TryGetValue(registry, out var passed))
        {
            return (RegistryCredentialSource.Passed, passed);
        }

        if (_tenantFile is not null && await _tenantFile.GetCredentialAsync(registry, cancellationToken).ConfigureAwait(false) is { } tenant)
        {
            return (RegistryCredentialSource.Tenant, tenant);
        }

        if (_fallback is not null && await _fallback.GetCredentialAsync(registry, cancellationToken).ConfigureAwait(false) is { } farm)
        {
            return (RegistryCredentialSource.Farm, farm);
        }

        return (RegistryCredentialSource.None, null);
    }

    /// <summary>Names what it holds, never a secret.</summary>
    public override string ToString() => $"registry credentials of build {BuildId} (tenant {Tenant ?? "none"}, passed for {_passed.Count} registr{(_passed.Count == 1 ? "y" : "ies")})";
}

/// <summary>
/// The credentials a client passes with a submission for its push targets, in the header <see cref="Header"/>: base64url
/// of a JSON object <c>{"HOST": {"username": "...", "password": "..."}}</c>, one entry per registry a tag pushes to.
/// </summary>
public static class PushCredentials
{
    /// <summary>The request header (<see cref="PushCredentialsHeader"/>, which the CLI writes).</summary>
    public const string Header = PushCredentialsHeader.Name;

    /// <summary>The credentials in header value <paramref name="value"/>, each for a registry one of <paramref name="submission"/>'s tags pushes to.</summary>
    /// <exception cref="InvalidPushCredentialsException">The value is malformed, or names another registry (FARM4242).</exception>
    public static IReadOnlyDictionary<string, RegistryCredential> Decode(string value, SubmitBuild submission)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(submission);
        byte[] json;
        try
        {
            var base64 = value.Trim().Replace('-', '+').Replace('_', '/');
            json = Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '='));
        }
        catch (FormatException)
        {
            throw new InvalidPushCredentialsException("it is not base64url");
        }

        // The push targets' registries, and those of the build's --cache-to and --cache-from, which it writes or reads too.
        var targets = (submission.Push ? submission.Tags.Select(t => ImageReference.TryParse(t, out var r) ? r.Registry : null) : [])
            .Concat((submission.Options?.CacheTo ?? []).Select(Farm.Oci.Images.CacheSpec.ParseExport).Select(c => c.Reference.Registry))
            .Concat((submission.Options?.CacheFrom ?? []).Select(Farm.Oci.Images.CacheSpec.ParseImport).Select(c => c.Reference.Registry))
            .OfType<string>()
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        var credentials = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidPushCredentialsException("it is not a JSON object of registries");
            }

            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!targets.Contains(entry.Name))
                {
                    // Named, as the client sent it: a host is no secret, and the user needs to know which one.
                    throw new InvalidPushCredentialsException($"it holds credentials for {entry.Name}, which no tag of the build pushes to and no --cache-to or --cache-from names (credentials go only to the push targets' and the build caches' registries)");
                }

                var username = entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("username", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
                var password = entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("password", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
                if (string.IsNullOrEmpty(username) || password is null)
                {
                    throw new InvalidPushCredentialsException($"the entry for {entry.Name} lacks a username or a password");
                }

                credentials[entry.Name] = new RegistryCredential { Username = username, Password = password };
            }
        }
        catch (JsonException)
        {
            // JsonException's message may quote the text around the error: never repeat it.
            throw new InvalidPushCredentialsException("it is not valid JSON");
        }

        return credentials;
    }

}
