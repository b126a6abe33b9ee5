namespace Farm.Dockerfile.Context;

/// <summary>
/// Lexical rules for slash paths inside a build context or a stage's root, as COPY/ADD apply them.
/// The worker's <c>RootedPath</c> adds the symlink-aware half on top of these.
/// </summary>
public static class ContextPath
{
    /// <summary>Whether a path, cleaned lexically (no symlinks), climbs above its root.</summary>
    public static bool EscapesLexically(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var depth = 0;
        foreach (var part in Split(path))
        {
            if (part == "..")
            {
                if (--depth < 0)
                {
                    return true;
                }
            }
            else if (part is not ("" or "."))
            {
                depth++;
            }
        }

        return false;
    }

    /// <summary>Lexically cleans a slash path into its components joined by '/': no leading slash, no dots.</summary>
    public static string Clean(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var parts = new List<string>();
        foreach (var part in Split(path))
        {
            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
            }
            else if (part is not ("" or "."))
            {
                parts.Add(part);
            }
        }

        return string.Join('/', parts);
    }

    public static string[] Split(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return path.Split('/', StringSplitOptions.RemoveEmptyEntries);
    }
}
