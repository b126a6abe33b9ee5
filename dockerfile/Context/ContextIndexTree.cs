namespace Farm.Dockerfile.Context;

/// <summary>
/// A packed build context seen through its <see cref="ContextIndex"/>: what the coordinator has when it computes
/// cache keys, without the context on disk.
/// </summary>
public sealed class ContextIndexTree : ISourceTree
{
    /// <summary>
    /// The mode of the context's root directory. The context tar has no entry for its root, so neither view can
    /// tell it: the index says this, and the worker's <see cref="DirectorySourceTree"/> of an extracted context is
    /// pinned to it, so <c>COPY . /new/</c> creates <c>/new</c> with 0755 whatever the worker's umask (BuildKit
    /// creates such a destination 0755 too).
    /// </summary>
    public const int RootMode = 0x1ED;

    private static readonly SourceEntry Root = new(ContextEntryType.Directory, RootMode, 0, null);

    private readonly Dictionary<string, SourceEntry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _children = new(StringComparer.Ordinal);

    public ContextIndexTree(ContextIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        _entries[string.Empty] = Root;
        _children[string.Empty] = [];
        foreach (var e in index.Entries)
        {
            var path = ContextPath.Clean(e.Path);
            if (path.Length == 0)
            {
                continue;
            }

            _entries[path] = new SourceEntry(e.Type, e.Mode, e.Type == ContextEntryType.File ? e.Size : 0, e.LinkTarget, e.Sha256);
            var slash = path.LastIndexOf('/');
            var parent = slash < 0 ? string.Empty : path[..slash];
            if (!_children.TryGetValue(parent, out var names))
            {
                _children[parent] = names = [];
            }

            names.Add(path[(slash + 1)..]);
        }
    }

    public SourceEntry? Lstat(string path) => _entries.GetValueOrDefault(path);

    public IEnumerable<string> List(string path) =>
        _entries.GetValueOrDefault(path) is { Type: ContextEntryType.Directory } && _children.TryGetValue(path, out var names) ? names : [];
}
