using Farm.Contracts;

namespace Farm.Dockerfile.Context;

/// <summary>What a COPY/ADD source root is, which decides how <c>..</c> and absolute symlinks in it resolve.</summary>
public enum SourceRootKind
{
    /// <summary>A build context: nothing may resolve outside it (FARM1203).</summary>
    BuildContext,

    /// <summary>A stage's or image's root filesystem (<c>COPY --from</c>): an absolute symlink means its own root.</summary>
    RootFilesystem,
}

/// <summary>
/// Selects what COPY/ADD sources take from a source tree. The one implementation of the rules: the coordinator runs
/// it over the context index to key a step (<see cref="ContextIndexTree"/>), the worker over the extracted context
/// or a stage's root to copy it (<see cref="DirectorySourceTree"/>), so the two cannot select different files.
/// </summary>
/// <remarks>
/// <para>The rules (https://docs.docker.com/reference/dockerfile/#copy):</para>
/// <list type="bullet">
/// <item>A source is cleaned lexically (<c>./a/</c> is <c>a</c>, a leading '/' is the root) and must not climb above
/// the root with <c>..</c> (FARM1203).</item>
/// <item>Each component with a wildcard is matched with Go's filepath.Match (<see cref="ContextGlob"/>; <c>**</c> is
/// <c>*</c>, as in Docker and BuildKit) against the names of the directory reached so far, in ordinal order; a
/// malformed pattern is FARM1206.</item>
/// <item>Symlinks on the way and in the named source itself are followed within the tree
/// (<see cref="ContextPath.Resolve"/>); in a build context an absolute or escaping target, or a loop, is FARM1203.
/// A wildcard match that leads nowhere (a dangling symlink) is skipped; a source with no match left is FARM1204.</item>
/// <item>A directory selects itself and, recursively, everything in it, symlinks below it kept as symlinks.</item>
/// <item><c>--exclude</c> drops a matched source when its path or name matches, and an entry below a matched
/// directory when its path relative to that directory or to the root matches (with everything below it).</item>
/// </list>
/// </remarks>
public sealed class CopySourceResolver
{
    private readonly ISourceTree _tree;
    private readonly bool _confined;

    public CopySourceResolver(ISourceTree tree, SourceRootKind kind = SourceRootKind.BuildContext)
    {
        ArgumentNullException.ThrowIfNull(tree);
        _tree = tree;
        _confined = kind == SourceRootKind.BuildContext;
    }

    /// <summary>
    /// Every entry the sources select, with its path as matched (relative to the root, symlinks in the named source not
    /// resolved), in ordinal path order; a path selected twice appears once. What a cache key hashes.
    /// </summary>
    /// <param name="sources">The sources as expanded (no URLs), relative to the root.</param>
    /// <param name="excludes"><c>--exclude</c> patterns.</param>
    /// <param name="instruction">COPY, ADD or RUN --mount, for error messages.</param>
    /// <exception cref="BuildContextException">FARM1203 when a source leaves the context, FARM1204 when a source
    /// matches nothing, FARM1206 when a pattern is malformed.</exception>
    public IReadOnlyList<ContextEntry> Select(IReadOnlyList<string> sources, IReadOnlyList<string> excludes, string instruction = "COPY")
    {
        ArgumentNullException.ThrowIfNull(sources);
        var matcher = new CopyExcludeMatcher(excludes ?? []);
        var selected = new SortedDictionary<string, ContextEntry>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            foreach (var match in Expand(source, matcher, instruction))
            {
                foreach (var node in match.SelfAndDescendants())
                {
                    var e = node.Entry;
                    selected[node.Path] = new ContextEntry(node.Path, e.Type, e.Mode, e.Size, e.Sha256, e.LinkTarget);
                }
            }
        }

        return [.. selected.Values];
    }

    /// <summary>
    /// The matches of one source that <paramref name="excludes"/> keeps, in match order, each with what it brings
    /// along. What a worker copies.
    /// </summary>
    /// <exception cref="BuildContextException">FARM1203, FARM1204, FARM1206 as <see cref="Select"/>.</exception>
    public IReadOnlyList<SourceNode> Expand(string source, CopyExcludeMatcher excludes, string instruction = "COPY")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(excludes);
        if (ContextPath.EscapesLexically(source))
        {
            throw OutsideContext(instruction, source);
        }

        var parts = ContextPath.Split(ContextPath.Clean(source));
        foreach (var part in parts)
        {
            try
            {
                ContextGlob.Validate(part);
            }
            catch (FormatException e)
            {
                throw new BuildContextException(FarmErrorCodes.CopyOption, $"{instruction} source '{source}' is not a valid pattern ({e.Message}); fix or escape the wildcard", e);
            }
        }

        var paths = new List<string>();
        ExpandInto([], parts, 0, instruction, source, paths);
        var matches = new List<(string Path, string Resolved, SourceEntry Entry)>();
        foreach (var path in paths)
        {
            var resolved = Resolve(path, instruction, source);
            if (_tree.Lstat(resolved) is { } entry)
            {
                // Else a wildcard listed a dangling symlink, or a literal path is missing: nothing to copy.
                matches.Add((path, resolved, entry));
            }
        }

        if (matches.Count == 0)
        {
            throw new BuildContextException(FarmErrorCodes.SourceNotFound, $"{instruction} source '{source}' matched no file or directory; check the path, its case, and that .dockerignore does not exclude it");
        }

        var nodes = new List<SourceNode>(matches.Count);
        foreach (var (path, resolved, entry) in matches)
        {
            var name = path[(path.LastIndexOf('/') + 1)..];
            if (!excludes.IsExcluded(path, name))
            {
                nodes.Add(new SourceNode(path, resolved, entry, entry.Type == ContextEntryType.Directory ? Walk(resolved, string.Empty, path, excludes) : []));
            }
        }

        return nodes;
    }

    private List<SourceNode> Walk(string dir, string relativeToItem, string relativeToRoot, CopyExcludeMatcher excludes)
    {
        var nodes = new List<SourceNode>();
        foreach (var name in Sorted(_tree.List(dir)))
        {
            var itemPath = relativeToItem.Length == 0 ? name : relativeToItem + "/" + name;
            var rootPath = relativeToRoot.Length == 0 ? name : relativeToRoot + "/" + name;
            if (excludes.IsExcluded(itemPath, rootPath))
            {
                continue;
            }

            var child = dir.Length == 0 ? name : dir + "/" + name;
            if (_tree.Lstat(child) is not { } entry)
            {
                continue;
            }

            nodes.Add(new SourceNode(rootPath, child, entry, entry.Type == ContextEntryType.Directory ? Walk(child, itemPath, rootPath, excludes) : []));
        }

        return nodes;
    }

    private void ExpandInto(List<string> prefix, string[] parts, int index, string instruction, string source, List<string> results)
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
            ExpandInto(prefix, parts, index + 1, instruction, source, results);
            prefix.RemoveAt(prefix.Count - 1);
            return;
        }

        var dir = Resolve(string.Join('/', prefix), instruction, source);
        foreach (var name in Sorted(_tree.List(dir)))
        {
            if (ContextGlob.IsMatch(part, name))
            {
                prefix.Add(name);
                ExpandInto(prefix, parts, index + 1, instruction, source, results);
                prefix.RemoveAt(prefix.Count - 1);
            }
        }
    }

    private string Resolve(string path, string instruction, string source) =>
        ContextPath.Resolve(_tree, path, followFinal: true, _confined, out var resolved) switch
        {
            PathResolution.Resolved => resolved,
            PathResolution.Escapes => throw OutsideContext(instruction, source),
            _ => throw new BuildContextException(FarmErrorCodes.SourceOutsideContext, $"{instruction} source '{source}' has too many levels of symbolic links (more than {ContextPath.MaxSymlinks}); break the symlink loop"),
        };

    private static List<string> Sorted(IEnumerable<string> names)
    {
        var list = names.ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private static BuildContextException OutsideContext(string instruction, string source) =>
        new(FarmErrorCodes.SourceOutsideContext, $"{instruction} source '{source}' is outside the build context; only files inside the context (or the --from stage) can be copied, so move the file into the context");
}
