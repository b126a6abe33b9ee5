using Farm.Contracts;

namespace Farm.Dockerfile.Context;

/// <summary>
/// Selects what COPY/ADD sources take from a build context, working on the <see cref="ContextIndex"/> instead of a
/// file system, so the coordinator can compute cache keys without the context on disk.
/// </summary>
/// <remarks>
/// The rules are the worker's (<c>SourceMatcher</c> and <c>CopySourceHasher</c>), step for step, because a cache
/// key must describe exactly the files the worker will copy: a source is cleaned lexically and must not climb out
/// of the context; each component with a wildcard is matched with Go's filepath.Match against the names in the
/// directory reached so far (ordinal order); symlinks on the way and in the named source itself are followed
/// within the context (an absolute or escaping target is an error); a dangling match is skipped; a directory
/// selects itself and everything below it, symlinks below it not followed; <c>--exclude</c> is checked against the
/// path relative to the matched item and relative to the root. https://docs.docker.com/reference/dockerfile/#copy
/// </remarks>
public sealed class ContextSourceSelector
{
    private const int MaxSymlinks = 255;
    private static readonly ContextEntry Root = new(string.Empty, ContextEntryType.Directory, 0, 0, null, null);

    private readonly Dictionary<string, ContextEntry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _children = new(StringComparer.Ordinal);

    public ContextSourceSelector(ContextIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        _entries[string.Empty] = Root;
        _children[string.Empty] = [];
        foreach (var entry in index.Entries)
        {
            var path = ContextPath.Clean(entry.Path);
            if (path.Length == 0)
            {
                continue;
            }

            _entries[path] = entry;
            var slash = path.LastIndexOf('/');
            var parent = slash < 0 ? string.Empty : path[..slash];
            if (!_children.TryGetValue(parent, out var list))
            {
                _children[parent] = list = [];
            }

            list.Add(path[(slash + 1)..]);
            if (entry.Type == ContextEntryType.Directory && !_children.ContainsKey(path))
            {
                _children[path] = [];
            }
        }

        foreach (var list in _children.Values)
        {
            list.Sort(StringComparer.Ordinal);
        }
    }

    /// <summary>
    /// Every entry the sources select, with its path as the worker sees it (relative to the context root, symlinks in
    /// the named source not resolved), in ordinal path order; a path selected twice appears once.
    /// </summary>
    /// <param name="sources">The sources as expanded, relative to the context root.</param>
    /// <param name="excludes"><c>--exclude</c> patterns.</param>
    /// <param name="instruction">COPY or ADD, for error messages.</param>
    /// <exception cref="BuildContextException">FARM1203 when a source leaves the context, FARM1204 when a source
    /// matches nothing, FARM1206 when a pattern is malformed.</exception>
    public IReadOnlyList<ContextEntry> Select(IReadOnlyList<string> sources, IReadOnlyList<string> excludes, string instruction = "COPY")
    {
        ArgumentNullException.ThrowIfNull(sources);
        var matcher = new CopyExcludeMatcher(excludes ?? []);
        var selected = new SortedDictionary<string, ContextEntry>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            foreach (var (logical, resolved) in Expand(source, instruction))
            {
                var name = logical.Length == 0 ? string.Empty : logical[(logical.LastIndexOf('/') + 1)..];
                if (matcher.IsExcluded(logical, name))
                {
                    continue;
                }

                var entry = _entries[resolved];
                selected[logical] = entry with { Path = logical };
                if (entry.Type == ContextEntryType.Directory)
                {
                    Walk(resolved, string.Empty, logical, matcher, selected);
                }
            }
        }

        return [.. selected.Values];
    }

    private void Walk(string dir, string relativeToItem, string relativeToRoot, CopyExcludeMatcher matcher, SortedDictionary<string, ContextEntry> selected)
    {
        foreach (var name in _children.GetValueOrDefault(dir) ?? [])
        {
            var itemPath = relativeToItem.Length == 0 ? name : relativeToItem + "/" + name;
            var rootPath = relativeToRoot.Length == 0 ? name : relativeToRoot + "/" + name;
            if (matcher.IsExcluded(itemPath, rootPath))
            {
                continue;
            }

            var child = dir.Length == 0 ? name : dir + "/" + name;
            var entry = _entries[child];
            selected[rootPath] = entry with { Path = rootPath };
            if (entry.Type == ContextEntryType.Directory)
            {
                Walk(child, itemPath, rootPath, matcher, selected);
            }
        }
    }

    /// <summary>The matches of one source: (path as matched, path with symlinks resolved).</summary>
    private List<(string Logical, string Resolved)> Expand(string pattern, string instruction)
    {
        if (ContextPath.EscapesLexically(pattern))
        {
            throw OutsideContext(instruction, pattern);
        }

        var parts = ContextPath.Split(ContextPath.Clean(pattern));
        foreach (var part in parts)
        {
            try
            {
                ContextGlob.Validate(part);
            }
            catch (FormatException e)
            {
                throw new BuildContextException(FarmErrorCodes.CopyOption, $"{instruction} source '{pattern}' is not a valid pattern ({e.Message}); fix or escape the wildcard", e);
            }
        }

        var logical = new List<string>();
        ExpandInto([], parts, 0, instruction, pattern, logical);
        var matches = new List<(string, string)>();
        foreach (var path in logical)
        {
            var resolved = Resolve(path, followFinal: true) ?? throw OutsideContext(instruction, pattern);
            if (_entries.ContainsKey(resolved))
            {
                // Else a wildcard listed a dangling symlink: nothing to copy, as on the worker.
                matches.Add((path, resolved));
            }
        }

        if (matches.Count == 0)
        {
            throw new BuildContextException(FarmErrorCodes.SourceNotFound, $"{instruction} source '{pattern}' matched no file or directory; check the path, its case, and that .dockerignore does not exclude it");
        }

        return matches;
    }

    private void ExpandInto(List<string> prefix, string[] parts, int index, string instruction, string pattern, List<string> results)
    {
        if (index == parts.Length)
        {
            results.Add(string.Join('/', prefix));
            return;
        }

        var part = parts[index];
        if (!ContextGlob.HasMeta(part))
        {
            prefix.Add(part);
            ExpandInto(prefix, parts, index + 1, instruction, pattern, results);
            prefix.RemoveAt(prefix.Count - 1);
            return;
        }

        var dir = Resolve(string.Join('/', prefix), followFinal: true) ?? throw OutsideContext(instruction, pattern);
        if (!_entries.TryGetValue(dir, out var dirEntry) || dirEntry.Type != ContextEntryType.Directory)
        {
            return;
        }

        foreach (var name in _children.GetValueOrDefault(dir) ?? [])
        {
            if (ContextGlob.IsMatch(part, name))
            {
                prefix.Add(name);
                ExpandInto(prefix, parts, index + 1, instruction, pattern, results);
                prefix.RemoveAt(prefix.Count - 1);
            }
        }
    }

    /// <summary>Resolves symlinks component by component inside the context; null when the path would leave it.</summary>
    private string? Resolve(string path, bool followFinal)
    {
        var pending = new LinkedList<string>(ContextPath.Split(path));
        var resolved = new List<string>();
        var links = 0;
        while (pending.First is { } node)
        {
            var part = node.Value;
            pending.RemoveFirst();
            if (part is "" or ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (resolved.Count == 0)
                {
                    return null;
                }

                resolved.RemoveAt(resolved.Count - 1);
                continue;
            }

            var isLast = pending.All(p => p is "" or ".");
            resolved.Add(part);
            if (isLast && !followFinal)
            {
                continue;
            }

            if (!_entries.TryGetValue(string.Join('/', resolved), out var entry) || entry.Type != ContextEntryType.Symlink)
            {
                continue;
            }

            resolved.RemoveAt(resolved.Count - 1);
            if (++links > MaxSymlinks)
            {
                throw new BuildContextException(FarmErrorCodes.SourceOutsideContext, $"Too many levels of symbolic links in '{path}' in the build context; break the symlink loop");
            }

            var target = entry.LinkTarget ?? string.Empty;
            if (target.StartsWith('/'))
            {
                return null;
            }

            foreach (var t in ContextPath.Split(target).Reverse())
            {
                pending.AddFirst(t);
            }
        }

        return string.Join('/', resolved);
    }

    private static BuildContextException OutsideContext(string instruction, string source) =>
        new(FarmErrorCodes.SourceOutsideContext, $"{instruction} source '{source}' is outside the build context; only files inside the context (or the --from stage) can be copied, so move the file into the context");
}
