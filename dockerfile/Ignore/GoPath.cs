namespace Farm.Dockerfile.Ignore;

/// <summary>Lexical path operations with the exact results of Go's <c>path.Clean</c> and <c>path.Dir</c>.</summary>
/// <remarks>
/// Docker cleans every pattern and path this way before matching, and patterns must compare equal to what Docker
/// would produce, so <see cref="Path.GetFullPath(string)"/> (which touches the file system's view) does not fit.
/// </remarks>
internal static class GoPath
{
    public static string Clean(string path)
    {
        if (path.Length == 0)
        {
            return ".";
        }

        var rooted = path[0] == '/';
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0 && parts[^1] != "..")
                {
                    parts.RemoveAt(parts.Count - 1);
                }
                else if (!rooted)
                {
                    parts.Add(part);
                }

                continue;
            }

            parts.Add(part);
        }

        var joined = string.Join('/', parts);
        if (rooted)
        {
            return "/" + joined;
        }

        return joined.Length == 0 ? "." : joined;
    }

    public static string Dir(string path)
    {
        var slash = path.LastIndexOf('/');
        return Clean(slash < 0 ? string.Empty : path[..(slash + 1)]);
    }
}
