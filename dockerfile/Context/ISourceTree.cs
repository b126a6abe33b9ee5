using Farm.Oci.IO;

namespace Farm.Dockerfile.Context;

/// <summary>
/// The file information COPY/ADD source selection needs, and nothing else: list a directory, lstat an entry.
/// <see cref="CopySourceResolver"/> runs on it, so the coordinator (over the context index, <see cref="ContextIndexTree"/>)
/// and the worker (over the extracted context or a stage's root, <see cref="DirectorySourceTree"/>) select with one
/// algorithm and a cache key describes exactly the files a worker copies.
/// </summary>
/// <remarks>
/// Paths are relative to the tree's root, separated by '/', with no empty, <c>.</c> or <c>..</c> component; the
/// empty path is the root. Every component but the last is a directory that is not a symlink: symlinks are resolved
/// by <see cref="ContextPath.Resolve"/>, never by a tree, so an implementation never follows one.
/// </remarks>
public interface ISourceTree
{
    /// <summary>The entry at <paramref name="path"/>, a final symlink not followed; null when nothing is there.</summary>
    SourceEntry? Lstat(string path);

    /// <summary>The names in the directory at <paramref name="path"/>, in any order; empty when it is not a directory.</summary>
    IEnumerable<string> List(string path);
}

/// <summary>What an lstat of one entry of an <see cref="ISourceTree"/> says, in the terms a cache key and a copy share.</summary>
/// <param name="Type">File, directory, symlink; <see cref="ContextEntryType.Other"/> for a fifo, device or socket (a
/// stage's root can hold them, a build context cannot).</param>
/// <param name="Mode">Permission bits with setuid, setgid and sticky (<c>07777</c>).</param>
/// <param name="Size">Bytes of a regular file; 0 for anything else (a directory's or a symlink's size on disk says
/// nothing about what is copied).</param>
/// <param name="LinkTarget">A symlink's target as stored; null for anything else.</param>
/// <param name="Sha256">Hex sha256 of a file's content (of the target, for a symlink) where the tree knows it without
/// reading the file (the context index); null on disk.</param>
public sealed record SourceEntry(ContextEntryType Type, int Mode, long Size, string? LinkTarget, string? Sha256 = null)
{
    /// <summary>The whole lstat (owner, inode, times, device numbers) when the tree is a directory on disk.</summary>
    public FileStat? Stat { get; init; }
}

/// <summary>One entry COPY/ADD selected, with everything it brings along when it is a directory.</summary>
/// <param name="Path">Relative to the source root as matched: symlinks in the named source are not resolved, so this is
/// the name the entry is copied (and keyed) under.</param>
/// <param name="ResolvedPath">Where the entry really is in the tree (symlinks of the named source followed).</param>
/// <param name="Entry">Its lstat (of the target, for a named source that is a symlink).</param>
/// <param name="Children">For a directory, its entries that <c>--exclude</c> keeps, in ordinal name order; symlinks
/// below a selected directory are entries of their own, never followed.</param>
public sealed record SourceNode(string Path, string ResolvedPath, SourceEntry Entry, IReadOnlyList<SourceNode> Children)
{
    /// <summary>The last component of <see cref="Path"/> (empty for the root).</summary>
    public string Name => Path[(Path.LastIndexOf('/') + 1)..];

    /// <summary>This node and every node below it, parents first, in ordinal name order.</summary>
    public IEnumerable<SourceNode> SelfAndDescendants()
    {
        yield return this;
        foreach (var child in Children)
        {
            foreach (var node in child.SelfAndDescendants())
            {
                yield return node;
            }
        }
    }
}
