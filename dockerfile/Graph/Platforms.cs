namespace Farm.Dockerfile.Graph;

/// <summary>
/// The <c>os/arch[/variant]</c> form of a platform, as the automatic platform ARGs expose it.
/// See https://docs.docker.com/reference/dockerfile/#automatic-platform-args-in-the-global-scope.
/// </summary>
internal readonly record struct PlatformSpec(string Os, string Architecture, string Variant)
{
    public override string ToString() => Variant.Length == 0 ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    /// <summary>Null when <paramref name="text"/> is not <c>os/arch[/variant]</c>.</summary>
    public static PlatformSpec? TryParse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || p.Any(char.IsWhiteSpace)))
        {
            return null;
        }

        return new PlatformSpec(parts[0], parts[1], parts.Length == 3 ? parts[2] : string.Empty);
    }

    /// <summary>Adds <c>{prefix}PLATFORM</c>, <c>{prefix}OS</c>, <c>{prefix}ARCH</c> and <c>{prefix}VARIANT</c>.</summary>
    public void AddArgs(IDictionary<string, string> args, string prefix)
    {
        args[prefix + "PLATFORM"] = ToString();
        args[prefix + "OS"] = Os;
        args[prefix + "ARCH"] = Architecture;
        args[prefix + "VARIANT"] = Variant;
    }
}
