using Farm.Contracts;
using Farm.Oci.Registry;

namespace Farm.Oci.Images;

/// <summary>Which steps <c>--cache-to</c> exports (buildx's <c>mode=</c>).</summary>
public enum CacheExportMode
{
    /// <summary>The steps of the exported image's stages only (buildx's default).</summary>
    Min,

    /// <summary>Every layer step the build ran or took from the cache, intermediate stages included.</summary>
    Max,
}

/// <summary>
/// One <c>--cache-to</c> or <c>--cache-from</c> value in buildx's CSV form: <c>type=registry,ref=HOST/REPO:TAG</c>,
/// with <c>mode=min|max</c> and <c>ignore-error=true|false</c> for an export; <c>--cache-from</c> also takes a bare
/// reference, meaning <c>type=registry,ref=REF</c>. Only the registry backend exists here.
/// https://docs.docker.com/build/cache/backends/registry/
/// </summary>
public sealed record CacheSpec
{
    /// <summary>The registry reference the cache is exported to or imported from; a tag when none is written (<c>latest</c>).</summary>
    public required ImageReference Reference { get; init; }

    /// <summary>For an export: which steps go into it.</summary>
    public CacheExportMode Mode { get; init; } = CacheExportMode.Min;

    /// <summary>For an export: a failed export is a warning instead of failing the build (buildx's <c>ignore-error</c>).</summary>
    public bool IgnoreError { get; init; }

    /// <summary>The spec in the form <see cref="ParseExport"/> and <see cref="ParseImport"/> read, with every field written out.</summary>
    public string Format(bool export) => export
        ? $"type=registry,ref={Reference},mode={Mode.ToString().ToLowerInvariant()}{(IgnoreError ? ",ignore-error=true" : string.Empty)}"
        : $"type=registry,ref={Reference}";

    /// <summary>A <c>--cache-to</c> value.</summary>
    /// <exception cref="InvalidCacheOptionException">Malformed (FARM2260).</exception>
    /// <exception cref="UnsupportedCacheTypeException">Another type than <c>registry</c> (FARM2261).</exception>
    public static CacheSpec ParseExport(string value) => Parse(value, export: true);

    /// <summary>A <c>--cache-from</c> value: the CSV form, or a bare reference.</summary>
    /// <exception cref="InvalidCacheOptionException">Malformed (FARM2260).</exception>
    /// <exception cref="UnsupportedCacheTypeException">Another type than <c>registry</c> (FARM2261).</exception>
    public static CacheSpec ParseImport(string value) => Parse(value, export: false);

    private static CacheSpec Parse(string value, bool export)
    {
        ArgumentNullException.ThrowIfNull(value);
        var flag = export ? "--cache-to" : "--cache-from";
        if (value.Trim().Length == 0)
        {
            throw new InvalidCacheOptionException(flag, value, "it is empty");
        }

        if (!value.Contains('=', StringComparison.Ordinal))
        {
            // buildx: --cache-from REF is type=registry,ref=REF; --cache-to always names its type.
            return export
                ? throw new InvalidCacheOptionException(flag, value, "it names no type=; write type=registry,ref=HOST/REPOSITORY:TAG")
                : new CacheSpec { Reference = ParseReference(flag, value, value.Trim()) };
        }

        var fields = new List<(string Key, string Value)>();
        foreach (var field in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = field.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new InvalidCacheOptionException(flag, value, $"'{field}' is not key=value");
            }

            fields.Add((field[..eq].ToLowerInvariant(), field[(eq + 1)..]));
        }

        // The type first: another backend's options (dest=, src=, url=) are refused as that backend, not as unknown keys.
        var type = fields.LastOrDefault(f => f.Key == "type").Value?.ToLowerInvariant();
        if (type is not null and not "registry")
        {
            throw new UnsupportedCacheTypeException(flag, value, type);
        }

        string? reference = null;
        var mode = CacheExportMode.Min;
        var ignoreError = false;
        foreach (var (key, v) in fields)
        {
            switch (key)
            {
                case "type":
                    break;
                case "ref":
                    reference = v;
                    break;
                case "mode" when export:
                    mode = v.ToLowerInvariant() switch
                    {
                        "min" => CacheExportMode.Min,
                        "max" => CacheExportMode.Max,
                        _ => throw new InvalidCacheOptionException(flag, value, $"mode '{v}' is neither min nor max"),
                    };
                    break;
                case "ignore-error" when export:
                    ignoreError = bool.TryParse(v, out var ignore) ? ignore : throw new InvalidCacheOptionException(flag, value, $"ignore-error must be true or false, not '{v}'");
                    break;
                case "oci-mediatypes" or "image-manifest" or "compression" or "compression-level" or "force-compression":
                    // buildx's layout options: the export is always one OCI image manifest with the layers as built.
                    break;
                default:
                    throw new InvalidCacheOptionException(flag, value, $"'{key}' is not an option of {flag} Farm knows (type, ref{(export ? ", mode, ignore-error" : string.Empty)})");
            }
        }

        if (type is null)
        {
            throw new InvalidCacheOptionException(flag, value, "type= is missing");
        }

        if (string.IsNullOrEmpty(reference))
        {
            throw new InvalidCacheOptionException(flag, value, "ref= is missing");
        }

        return new CacheSpec { Reference = ParseReference(flag, value, reference), Mode = mode, IgnoreError = ignoreError };
    }

    private static ImageReference ParseReference(string flag, string value, string reference)
    {
        // Docker Hub's short names are accepted as for images, but a cache reference reads best written whole.
        if (!ImageReference.TryParse(reference, out var parsed))
        {
            throw new InvalidCacheOptionException(flag, value, $"'{reference}' is not a reference HOST/REPOSITORY[:TAG]");
        }

        return parsed.Tag is null && parsed.Digest is null ? parsed with { Tag = "latest" } : parsed;
    }
}

/// <summary>FARM2260: a <c>--cache-to</c> or <c>--cache-from</c> value is malformed.</summary>
public sealed class InvalidCacheOptionException(string flag, string value, string reason)
    : FarmException(FarmErrorCodes.InvalidCacheOption, $"{flag} '{value}' is not valid: {reason}. Write {(flag == "--cache-to" ? "type=registry,ref=HOST/REPOSITORY:TAG[,mode=min|max]" : "type=registry,ref=HOST/REPOSITORY:TAG, or the reference alone")}.");

/// <summary>FARM2261: a <c>--cache-to</c> or <c>--cache-from</c> names a backend Farm does not have.</summary>
public sealed class UnsupportedCacheTypeException(string flag, string value, string type)
    : FarmException(FarmErrorCodes.UnsupportedCacheType, $"{flag} '{value}': the cache type '{type}' is not supported; Farm exports and imports its build cache through a registry only: type=registry,ref=HOST/REPOSITORY:TAG (a farm's own cache is shared by its builds without any flag).");
