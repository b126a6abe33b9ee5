using System.Collections.Frozen;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Auth;

/// <summary>What a token may do: <see cref="Read"/> only reads its tenant's builds (and the dashboard and metrics);
/// <see cref="Build"/> also submits and cancels them; <see cref="Admin"/> sees and cancels every tenant's.</summary>
public enum FarmRole
{
    Read,
    Build,
    Admin,
}

/// <summary>One line of the tokens file: a token's hash or an AMQP user, the tenant it belongs to and its role.</summary>
public sealed record TokenEntry(string Tenant, FarmRole Role);

/// <summary>
/// The coordinator's tokens: SHA-256 of each bearer token, and AMQP users, each with its tenant (lines
/// <c>TENANT sha256:HEX [ROLE]</c> and <c>TENANT amqp:USER</c>, see <see cref="CoordinatorAuthOptions.TokensFile"/>).
/// </summary>
/// <remarks>
/// A plain SHA-256, not a password hash (PBKDF2, bcrypt, Argon2): a token is 256 random bits, so nobody can search
/// its hash's preimages, whereas a slow hash exists to protect guessable passwords and would cost every request its
/// work factor. The file holds no usable credential: a leaked copy lets nobody in. Looking a hash up in a dictionary
/// may take time that depends on the hash, which tells an attacker nothing about any token.
/// </remarks>
public sealed partial class FarmTokens
{
    /// <summary>What every token starts with: greppable in a secret scanner, distinct from other credentials.</summary>
    public const string Prefix = "farm_";

    /// <summary>How often a request may look at the tokens file for a change (one stat).</summary>
    internal static readonly TimeSpan ReloadCheckPeriod = TimeSpan.FromSeconds(1);

    private readonly CoordinatorAuthOptions? _options;
    private readonly TimeProvider _time;
    private readonly Lock _reload = new();
    private volatile Snapshot _current;
    private long _nextCheck;

    private FarmTokens(CoordinatorAuthOptions? options, Snapshot snapshot, TimeProvider time)
    {
        _options = options;
        _current = snapshot;
        _time = time;
        _nextCheck = time.GetTimestamp() + Period(time);
    }

    /// <summary>Whether requests and queued submissions must say who they are from.</summary>
    public bool Enabled => _options is not null;

    public int TokenCount => Current.ByHash.Count;

    /// <summary>Where a reload of the tokens file is reported (read, or refused and the tokens before kept).</summary>
    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <summary>No auth: every request is served, every submission is tenant-less.</summary>
    public static FarmTokens None { get; } = new(null, new Snapshot(FrozenDictionary<string, TokenEntry>.Empty, FrozenDictionary<string, string>.Empty, null), TimeProvider.System);

    /// <summary>
    /// Reads the tokens file and the configured lines; with auth off, <see cref="None"/>. The file is read again when
    /// it changes (checked at most every <see cref="ReloadCheckPeriod"/>, on use), so a token added or revoked there
    /// takes effect within about a second, without a restart.
    /// </summary>
    /// <exception cref="AuthSettingsException">The file is unreadable, a line is malformed, or no token is left (FARM4232).</exception>
    public static FarmTokens Load(CoordinatorAuthOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Enabled ? new FarmTokens(options, Parse(options), time ?? TimeProvider.System) : None;
    }

    private static long Period(TimeProvider time) => (long)(ReloadCheckPeriod.TotalSeconds * time.TimestampFrequency);

    /// <summary>The tokens in force: those of the file as last read, read again first when it changed.</summary>
    private Snapshot Current
    {
        get
        {
            var current = _current;
            if (current.File is null || _time.GetTimestamp() < Interlocked.Read(ref _nextCheck) || !_reload.TryEnter())
            {
                return current;
            }

            try
            {
                _nextCheck = _time.GetTimestamp() + Period(_time);
                if (!FileStamp.Of(_options!.TokensFile!).Equals(current.File))
                {
                    _current = current = Parse(_options);
                    LogReloaded(Logger, _options.TokensFile!, current.ByHash.Count, current.AmqpUsers.Count);
                }
            }
            catch (AuthSettingsException e)
            {
                // Keep serving with what was read before; one report per change of the file, not per request.
                _current = current = current with { File = FileStamp.Of(_options!.TokensFile!) };
                LogReloadFailed(Logger, _options!.TokensFile!, e.Message);
            }
            finally
            {
                _reload.Exit();
            }

            return current;
        }
    }

    private static Snapshot Parse(CoordinatorAuthOptions options)
    {
        FileStamp? stamp = null;
        var lines = new List<(string Source, int Number, string Text)>();
        if (!string.IsNullOrWhiteSpace(options.TokensFile))
        {
            string[] text;
            try
            {
                // Stamped before reading: a change while it is read is seen at the next check.
                stamp = FileStamp.Of(options.TokensFile);
                text = File.ReadAllLines(options.TokensFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new AuthSettingsException($"{CoordinatorAuthOptions.Section}:TokensFile '{options.TokensFile}' cannot be read ({e.Message}): create it with lines 'TENANT sha256:HEX [build|read|admin]' (farm-coordinator token create --tenant NAME prints one).", e);
            }

            lines.AddRange(text.Select((t, i) => (options.TokensFile, i + 1, t)));
        }

        lines.AddRange(options.Tokens.Select((t, i) => ($"{CoordinatorAuthOptions.Section}:Tokens", i, t)));
        var byHash = new Dictionary<string, TokenEntry>(StringComparer.Ordinal);
        var amqp = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (source, number, text) in lines)
        {
            var line = text.Split('#', 2)[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            string Where() => string.Create(CultureInfo.InvariantCulture, $"{source} line {number}");
            if (fields.Length is < 2 or > 3 || !TenantName().IsMatch(fields[0]))
            {
                throw new AuthSettingsException($"{Where()} is not 'TENANT sha256:HEX [build|read|admin]' or 'TENANT amqp:USER' (a tenant is letters, digits, '.', '_' and '-').");
            }

            var role = FarmRole.Build;
            if (fields.Length == 3 && !Enum.TryParse(fields[2], ignoreCase: true, out role))
            {
                throw new AuthSettingsException($"{Where()} has the role '{fields[2]}': use build, read or admin.");
            }

            if (fields[1].StartsWith("sha256:", StringComparison.Ordinal) && fields[1].Length == 71 && Hex().IsMatch(fields[1][7..]))
            {
                byHash[fields[1][7..].ToLowerInvariant()] = new TokenEntry(fields[0], role);
            }
            else if (fields[1].StartsWith("amqp:", StringComparison.Ordinal) && fields[1].Length > 5 && fields.Length == 2)
            {
                amqp[fields[1][5..]] = fields[0];
            }
            else
            {
                // Never echo the field: a token pasted here by mistake must not reach the log.
                throw new AuthSettingsException($"{Where()}: the second field is neither 'sha256:' and 64 hex digits (the token's hash, not the token) nor 'amqp:USER' (without a role).");
            }
        }

        if (byHash.Count == 0 && amqp.Count == 0)
        {
            throw new AuthSettingsException($"{CoordinatorAuthOptions.Section} names no token: add lines 'TENANT sha256:HEX' (farm-coordinator token create --tenant NAME), or set {CoordinatorAuthOptions.Section}:Disabled=true to serve without auth.");
        }

        return new Snapshot(byHash.ToFrozenDictionary(StringComparer.Ordinal), amqp.ToFrozenDictionary(StringComparer.Ordinal), stamp);
    }

    /// <summary>The tenant and role of <paramref name="token"/>; false for a token not in the file.</summary>
    public bool TryAuthenticate(string token, out TokenEntry entry)
    {
        ArgumentNullException.ThrowIfNull(token);
        return Current.ByHash.TryGetValue(Hash(token), out entry!);
    }

    /// <summary>The tenant whose queued submissions the AMQP user <paramref name="user"/> publishes; false when none.</summary>
    public bool TryTenantOfAmqpUser(string user, out string tenant) => Current.AmqpUsers.TryGetValue(user, out tenant!);

    /// <summary>A new token: <see cref="Prefix"/> and 32 random bytes, base64url.</summary>
    public static string Mint() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Lowercase hex SHA-256 of the token's UTF-8 bytes: what the tokens file holds.</summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>The tokens file's line for <paramref name="token"/>.</summary>
    public static string Line(string tenant, string token, FarmRole role) =>
        $"{tenant} sha256:{Hash(token)} {role.ToString().ToLowerInvariant()}";

    public static bool IsTenantName(string name) => TenantName().IsMatch(name);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tokens file {File} changed and was read again: {Tokens} token(s), {AmqpUsers} AMQP user(s)")]
    private static partial void LogReloaded(ILogger logger, string file, int tokens, int amqpUsers);

    [LoggerMessage(Level = LogLevel.Error, Message = "Tokens file {File} changed but cannot be used; the tokens read before stay in force until it is fixed: {Reason}")]
    private static partial void LogReloadFailed(ILogger logger, string file, string reason);

    /// <summary>The tokens read from the file (null: configured lines only), and the file as it was read.</summary>
    private sealed record Snapshot(FrozenDictionary<string, TokenEntry> ByHash, FrozenDictionary<string, string> AmqpUsers, FileStamp? File);

    /// <summary>
    /// What tells a changed file: the file it finally resolves to, its modification time and size (a Kubernetes secret
    /// volume swaps a symlink to a new directory; an editor's save may keep the time to the second but not the size).
    /// </summary>
    private readonly record struct FileStamp(string Target, DateTime Modified, long Length)
    {
        public static FileStamp Of(string path)
        {
            try
            {
                var target = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
                var info = new FileInfo(target);
                return info.Exists ? new FileStamp(target, info.LastWriteTimeUtc, info.Length) : new FileStamp(target, default, -1);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return new FileStamp(path, default, -1);
            }
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    private static partial Regex TenantName();

    [GeneratedRegex("^[0-9A-Fa-f]{64}$")]
    private static partial Regex Hex();
}
