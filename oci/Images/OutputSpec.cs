namespace Farm.Oci.Images;

/// <summary>The exporters of <c>--output</c>.</summary>
public enum OutputType
{
    /// <summary>An OCI image layout, as a tar (the default, as buildx writes it) or a directory.</summary>
    Oci,

    /// <summary>A <c>docker save</c>-style archive for <c>docker load</c> / <c>podman load</c>.</summary>
    Docker,

    /// <summary>The image's root filesystem, unpacked into a directory.</summary>
    Local,
}

/// <summary>
/// One <c>--output</c> value in buildx's CSV form: <c>type=oci,dest=out.tar</c>, <c>type=oci,dest=dir,tar=false</c>,
/// <c>type=docker,dest=img.tar,name=app:1</c>, <c>type=local,dest=rootfs</c>; a bare path means <c>type=local</c>.
/// https://docs.docker.com/build/exporters/
/// </summary>
public sealed record OutputSpec
{
    public required OutputType Type { get; init; }

    /// <summary>The file (tar) or directory written.</summary>
    public required string Destination { get; init; }

    /// <summary>For <see cref="OutputType.Oci"/>: false writes a layout directory instead of a tar.</summary>
    public bool Tar { get; init; } = true;

    /// <summary>The image name(s) recorded in the output (<c>name=</c>); the build's tags when null.</summary>
    public IReadOnlyList<string>? Names { get; init; }

    /// <summary>The spec in the form <see cref="Parse"/> reads, with <see cref="Destination"/> made absolute against this process's directory.</summary>
    public string Format()
    {
        var text = $"type={Type.ToString().ToLowerInvariant()},dest={Path.GetFullPath(Destination)}";
        if (!Tar)
        {
            text += ",tar=false";
        }

        return Names is { Count: > 0 } names ? text + ",name=" + string.Join(';', names) : text;
    }

    public static OutputSpec Parse(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        if (!value.Contains('=', StringComparison.Ordinal))
        {
            return new OutputSpec { Type = OutputType.Local, Destination = value };
        }

        OutputType? type = null;
        string? dest = null;
        var tar = true;
        List<string>? names = null;
        foreach (var field in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = field.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new InvalidOutputException(value, $"'{field}' is not key=value");
            }

            var key = field[..eq].ToLowerInvariant();
            var v = field[(eq + 1)..];
            switch (key)
            {
                case "type":
                    type = v.ToLowerInvariant() switch
                    {
                        "oci" => OutputType.Oci,
                        "docker" => OutputType.Docker,
                        "local" => OutputType.Local,
                        _ => throw new InvalidOutputException(value, $"type '{v}' is not supported (oci, docker, local)"),
                    };
                    break;
                case "dest":
                    dest = v;
                    break;
                case "tar":
                    tar = bool.TryParse(v, out var t) ? t : throw new InvalidOutputException(value, $"tar must be true or false, not '{v}'");
                    break;
                case "name":
                    (names ??= []).AddRange(v.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
                    break;
                default:
                    throw new InvalidOutputException(value, $"'{key}' is not an option Farm knows");
            }
        }

        if (type is null)
        {
            throw new InvalidOutputException(value, "type= is missing");
        }

        if (string.IsNullOrEmpty(dest))
        {
            throw new InvalidOutputException(value, "dest= is missing (writing to stdout is not supported)");
        }

        if (!tar && type != OutputType.Oci)
        {
            throw new InvalidOutputException(value, "tar=false applies only to type=oci");
        }

        return new OutputSpec { Type = type.Value, Destination = dest, Tar = tar, Names = names };
    }
}
