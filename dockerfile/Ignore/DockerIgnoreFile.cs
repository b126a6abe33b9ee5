namespace Farm.Dockerfile.Ignore;

/// <summary>One pattern line of a <c>.dockerignore</c> file, after Docker's normalisation.</summary>
/// <param name="Pattern">The pattern, e.g. <c>test2</c> for a line <c>/test2</c>, or <c>!keep</c>.</param>
/// <param name="Line">1-based line number in the file; 0 when the pattern did not come from a file.</param>
public sealed record DockerIgnoreEntry(string Pattern, int Line);

/// <summary>A parsed <c>.dockerignore</c> file and the rules for finding it.</summary>
/// <remarks>
/// See https://docs.docker.com/reference/dockerfile/#dockerignore-file. Parsing follows moby/patternmatcher's
/// <c>ignorefile.ReadAll</c>: a UTF-8 BOM is dropped, lines starting with <c>#</c> are comments (only in the first
/// column), surrounding whitespace is trimmed, empty lines are skipped, each pattern is cleaned like Go's
/// <c>filepath.Clean</c> and a leading <c>/</c> is removed, keeping a <c>!</c> prefix in front.
/// </remarks>
public sealed record DockerIgnoreFile(string? SourcePath, IReadOnlyList<DockerIgnoreEntry> Entries)
{
    /// <summary>The name of the ignore file at the root of a build context.</summary>
    public const string ContextFileName = ".dockerignore";

    /// <summary>The patterns in order, as strings.</summary>
    public IReadOnlyList<string> Patterns => Entries.Select(entry => entry.Pattern).ToArray();

    /// <summary>Parses the text of an ignore file.</summary>
    public static DockerIgnoreFile Parse(string text, string? sourcePath = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var entries = new List<DockerIgnoreEntry>();
        var lineNumber = 0;
        foreach (var rawLine in SplitLines(text))
        {
            var line = rawLine;
            if (lineNumber == 0 && line.StartsWith('\uFEFF'))
            {
                line = line[1..];
            }

            lineNumber++;
            if (line.StartsWith('#'))
            {
                continue;
            }

            var pattern = line.Trim();
            if (pattern.Length == 0)
            {
                continue;
            }

            var invert = pattern[0] == '!';
            if (invert)
            {
                pattern = pattern[1..].Trim();
            }

            if (pattern.Length > 0)
            {
                pattern = GoPath.Clean(pattern);
                // Patterns are relative to the context root whether or not they are written with a leading '/'.
                if (pattern.Length > 1 && pattern[0] == '/')
                {
                    pattern = pattern[1..];
                }
            }

            entries.Add(new DockerIgnoreEntry(invert ? "!" + pattern : pattern, lineNumber));
        }

        return new DockerIgnoreFile(sourcePath, entries);
    }

    /// <summary>Reads and parses the ignore file at <paramref name="path"/>.</summary>
    public static async Task<DockerIgnoreFile> LoadAsync(string path, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        var text = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        return Parse(text, path);
    }

    /// <summary>
    /// Finds the ignore file for a build: <c>&lt;Dockerfile&gt;.dockerignore</c> beside the Dockerfile wins over
    /// <c>.dockerignore</c> at the root of the context. Null when neither exists.
    /// </summary>
    /// <param name="contextDirectory">The build context root.</param>
    /// <param name="dockerfilePath">The Dockerfile (absolute, or relative to the context); null for <c>&lt;context&gt;/Dockerfile</c>.</param>
    public static string? Locate(string contextDirectory, string? dockerfilePath)
    {
        ArgumentNullException.ThrowIfNull(contextDirectory);
        var dockerfile = Path.Combine(contextDirectory, dockerfilePath ?? "Dockerfile");
        var specific = dockerfile + ContextFileName;
        if (File.Exists(specific))
        {
            return specific;
        }

        var atRoot = Path.Combine(contextDirectory, ContextFileName);
        return File.Exists(atRoot) ? atRoot : null;
    }

    /// <summary>Compiles the patterns; errors name this file and the line.</summary>
    /// <exception cref="InvalidIgnorePatternException">A pattern is malformed.</exception>
    public PatternMatcher CreateMatcher() => new(Entries, SourcePath);

    // Lines as Go's bufio.ScanLines yields them: split on '\n', one trailing '\r' dropped, no empty last line.
    private static IEnumerable<string> SplitLines(string text)
    {
        var start = 0;
        while (start < text.Length)
        {
            var end = text.IndexOf('\n', start);
            var stop = end < 0 ? text.Length : end;
            var length = stop - start;
            if (length > 0 && text[stop - 1] == '\r')
            {
                length--;
            }

            yield return text.Substring(start, length);
            if (end < 0)
            {
                break;
            }

            start = end + 1;
        }
    }
}
