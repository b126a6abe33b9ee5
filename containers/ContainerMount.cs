using System.Globalization;
using System.Text.Json.Serialization;

namespace Farm.Containers;

/// <summary>What a <see cref="ContainerMount"/> mounts.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ContainerMountType>))]
public enum ContainerMountType
{
    /// <summary>A host file or directory.</summary>
    Bind,

    /// <summary>An empty tmpfs, gone when the container stops.</summary>
    Tmpfs,
}

/// <summary>
/// A mount of <c>farm run -v</c> or <c>--mount</c>: a host path bound into the container, or a tmpfs. Named and
/// anonymous volumes are not kept by Farm, so they are refused with a message, never silently made into something else.
/// </summary>
/// <remarks>
/// The syntax is docker's (https://docs.docker.com/engine/storage/bind-mounts/ and .../tmpfs/); the runtime spec
/// gets them after the standard mounts (https://github.com/opencontainers/runtime-spec/blob/main/config.md#mounts).
/// </remarks>
/// <param name="Type">Bind or tmpfs.</param>
/// <param name="Source">The absolute host path of a bind mount; null for tmpfs.</param>
/// <param name="Target">The absolute path inside the container.</param>
/// <param name="ReadOnly">Whether the container may not write through it.</param>
/// <param name="SizeBytes">A tmpfs's size limit; null for the kernel's default.</param>
public sealed record ContainerMount(ContainerMountType Type, string? Source, string Target, bool ReadOnly = false, long? SizeBytes = null)
{
    private static readonly string[] IgnoredVolumeOptions = ["rw", "z", "Z", "rprivate", "private", "rshared", "shared", "rslave", "slave", "nocopy"];

    /// <summary>
    /// Parses <c>-v HOST:CONTAINER[:OPTIONS]</c>. A host path starting with <c>./</c> or <c>../</c> is taken from
    /// <paramref name="workingDirectory"/>, as docker's CLI does; a missing host directory is created, as docker does for
    /// <c>-v</c>. Options: <c>ro</c>, <c>rw</c>, and the SELinux and propagation ones docker accepts (ignored here).
    /// </summary>
    public static ContainerMount ParseVolume(string spec, string workingDirectory)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = spec.Split(':');
        if (parts.Length == 1)
        {
            throw new InvalidMountException(spec, "an anonymous volume needs a volume store, which farm does not keep; bind a host directory instead (-v /host/dir:" + spec + ")");
        }

        if (parts.Length > 3)
        {
            throw new InvalidMountException(spec, "it has more than three ':'-separated parts");
        }

        var source = parts[0];
        if (source is "." or ".." || source.StartsWith("./", StringComparison.Ordinal) || source.StartsWith("../", StringComparison.Ordinal))
        {
            source = Path.GetFullPath(Path.Combine(workingDirectory, source));
        }
        else if (!source.StartsWith('/'))
        {
            throw new InvalidMountException(spec, $"'{source}' is not a host path but a volume name, and farm keeps no named volumes; give an absolute path (or ./{source} for one in the current directory)");
        }

        var readOnly = false;
        if (parts.Length == 3)
        {
            foreach (var option in parts[2].Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                if (option == "ro")
                {
                    readOnly = true;
                }
                else if (!IgnoredVolumeOptions.Contains(option, StringComparer.Ordinal))
                {
                    throw new InvalidMountException(spec, $"unknown option '{option}' (ro, rw)");
                }
            }
        }

        if (!File.Exists(source) && !Directory.Exists(source))
        {
            Directory.CreateDirectory(source);
        }

        return new ContainerMount(ContainerMountType.Bind, Path.GetFullPath(source), CheckedTarget(spec, parts[1]), readOnly);
    }

    /// <summary>
    /// Parses <c>--mount type=bind,source=HOST,target=CONTAINER[,readonly]</c> or
    /// <c>--mount type=tmpfs,target=CONTAINER[,tmpfs-size=BYTES]</c>. As docker, a bind source must exist and be absolute.
    /// </summary>
    public static ContainerMount ParseMount(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string? type = null, source = null, target = null;
        var readOnly = false;
        long? size = null;
        foreach (var field in spec.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = field.IndexOf('=', StringComparison.Ordinal);
            var key = (eq < 0 ? field : field[..eq]).Trim().ToLowerInvariant();
            var value = eq < 0 ? null : field[(eq + 1)..].Trim();
            switch (key)
            {
                case "type":
                    type = value;
                    break;
                case "source" or "src":
                    source = value;
                    break;
                case "target" or "destination" or "dst":
                    target = value;
                    break;
                case "readonly" or "ro":
                    readOnly = value switch
                    {
                        null or "1" or "true" => true,
                        "0" or "false" => false,
                        _ => throw new InvalidMountException(spec, $"{key} takes true or false, not '{value}'"),
                    };
                    break;
                case "tmpfs-size":
                    size = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) && bytes > 0
                        ? bytes : throw new InvalidMountException(spec, $"tmpfs-size must be a number of bytes, not '{value}'");
                    break;
                case "bind-propagation" or "consistency" or "tmpfs-mode" or "bind-recursive":
                    break;
                default:
                    throw new InvalidMountException(spec, $"unknown field '{key}' (type, source, target, readonly, tmpfs-size)");
            }
        }

        if (target is null)
        {
            throw new InvalidMountException(spec, "it has no target=PATH inside the container");
        }

        switch (type)
        {
            case "bind":
                if (string.IsNullOrEmpty(source) || !source.StartsWith('/'))
                {
                    throw new InvalidMountException(spec, $"a bind mount needs an absolute source=PATH on the host{(string.IsNullOrEmpty(source) ? "" : $", not '{source}'")}");
                }

                if (!File.Exists(source) && !Directory.Exists(source))
                {
                    throw new InvalidMountException(spec, $"the bind source {source} does not exist; create it first");
                }

                return new ContainerMount(ContainerMountType.Bind, Path.GetFullPath(source), CheckedTarget(spec, target), readOnly);
            case "tmpfs":
                if (source is not null)
                {
                    throw new InvalidMountException(spec, "a tmpfs mount has no source");
                }

                if (readOnly)
                {
                    throw new InvalidMountException(spec, "a read-only tmpfs would stay empty");
                }

                return new ContainerMount(ContainerMountType.Tmpfs, null, CheckedTarget(spec, target), readOnly, size);
            case null or "volume":
                throw new InvalidMountException(spec, "farm keeps no volumes; give type=bind with a host source, or type=tmpfs");
            default:
                throw new InvalidMountException(spec, $"type={type} is not bind or tmpfs");
        }
    }

    private static string CheckedTarget(string spec, string target)
    {
        if (!target.StartsWith('/'))
        {
            throw new InvalidMountException(spec, $"the container path '{target}' is not absolute");
        }

        var normalized = "/" + string.Join('/', target.Split('/', StringSplitOptions.RemoveEmptyEntries));
        if (normalized == "/" || target.Split('/').Contains(".."))
        {
            throw new InvalidMountException(spec, $"the container path '{target}' cannot be mounted over (not / and no '..')");
        }

        return normalized;
    }
}
