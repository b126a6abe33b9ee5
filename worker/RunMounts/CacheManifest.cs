using System.Text;
using Farm.Oci.IO;

namespace Farm.Worker.RunMounts;

/// <summary>
/// What a cache directory held when its last snapshot was taken or applied: for every path, what lstat said of it
/// (type and mode, owner, size, modification and change times, inode, a link's target). Comparing it with a new walk
/// says what a step changed, added and deleted without reading a byte of content, so an unchanged cache costs a walk
/// of stat calls, and a changed one a difference of the changed files only (<see cref="Stage"/>).
/// </summary>
/// <remarks>
/// The change time is part of the comparison, so a rewrite that keeps the modification time (a tool that restores
/// it) is still seen. Kept beside the directory as <c>NAME.manifest</c> in a small binary form of its own (one record
/// per path): it is read and written once per step on the worker only, never sent anywhere.
/// </remarks>
internal sealed class CacheManifest
{
    private const int FormatVersion = 1;

    private CacheManifest(Dictionary<string, Entry> entries) => Entries = entries;

    /// <summary>Every path under the directory, relative with <c>/</c>, to what it was.</summary>
    public Dictionary<string, Entry> Entries { get; }

    /// <summary>Bytes of the regular files.</summary>
    public long FileBytes => Entries.Values.Where(e => e.Type == FileStat.Regular).Sum(e => e.Size);

    /// <summary>Walks <paramref name="directory"/> (symbolic links not followed).</summary>
    public static CacheManifest Walk(string directory)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        WalkInto(Path.GetFullPath(directory), string.Empty, entries);
        return new CacheManifest(entries);
    }

    private static void WalkInto(string full, string relative, Dictionary<string, Entry> entries)
    {
        IEnumerable<string> children;
        try
        {
            children = Directory.EnumerateFileSystemEntries(full);
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }

        foreach (var child in children)
        {
            var name = Path.GetFileName(child);
            if (UnixFile.Lstat(child) is not { } st)
            {
                continue; // gone between readdir and lstat
            }

            var rel = relative + name;
            var link = st.IsSymlink ? new FileInfo(child).LinkTarget : null;
            entries[rel] = new Entry(st.Mode, st.Uid, st.Gid, st.IsRegularFile ? st.Size : 0, st.MtimeSeconds, st.MtimeNanoseconds, st.CtimeSeconds, st.CtimeNanoseconds, st.Inode, link);
            if (st.IsDirectory)
            {
                WalkInto(child, rel + "/", entries);
            }
        }
    }

    /// <summary>The manifest kept at <paramref name="file"/>; null when there is none or it cannot be read.</summary>
    public static CacheManifest? Read(string file)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(file), Encoding.UTF8);
            if (reader.ReadInt32() != FormatVersion)
            {
                return null;
            }

            var count = reader.ReadInt32();
            var entries = new Dictionary<string, Entry>(count, StringComparer.Ordinal);
            for (var i = 0; i < count; i++)
            {
                var path = reader.ReadString();
                var e = new Entry(reader.ReadUInt32(), reader.ReadUInt32(), reader.ReadUInt32(), reader.ReadInt64(), reader.ReadInt64(), reader.ReadUInt32(), reader.ReadInt64(), reader.ReadUInt32(), reader.ReadUInt64(), reader.ReadBoolean() ? reader.ReadString() : null);
                entries[path] = e;
            }

            return new CacheManifest(entries);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or EndOfStreamException or IOException)
        {
            return null;
        }
    }

    /// <summary>Writes the manifest to <paramref name="file"/> (through a temporary file, so a reader never sees half of it).</summary>
    public void Write(string file)
    {
        var temporary = file + ".tmp";
        using (var writer = new BinaryWriter(File.Create(temporary), Encoding.UTF8))
        {
            writer.Write(FormatVersion);
            writer.Write(Entries.Count);
            foreach (var (path, e) in Entries)
            {
                writer.Write(path);
                writer.Write(e.Mode);
                writer.Write(e.Uid);
                writer.Write(e.Gid);
                writer.Write(e.Size);
                writer.Write(e.MtimeSeconds);
                writer.Write(e.MtimeNanoseconds);
                writer.Write(e.CtimeSeconds);
                writer.Write(e.CtimeNanoseconds);
                writer.Write(e.Inode);
                writer.Write(e.Link is not null);
                if (e.Link is not null)
                {
                    writer.Write(e.Link);
                }
            }
        }

        File.Move(temporary, file, overwrite: true);
    }

    /// <summary>
    /// What changed from <paramref name="before"/> (null: nothing known, so everything is new) to this manifest: the
    /// paths new or changed, in order, and the paths deleted whose parent was not deleted too (one whiteout hides a
    /// deleted directory's whole tree).
    /// </summary>
    public CacheChanges Since(CacheManifest? before)
    {
        var changed = new List<string>();
        foreach (var (path, entry) in Entries)
        {
            if (before is null || !before.Entries.TryGetValue(path, out var old) || old != entry)
            {
                changed.Add(path);
            }
        }

        var deleted = new List<string>();
        if (before is not null)
        {
            foreach (var path in before.Entries.Keys)
            {
                if (Entries.ContainsKey(path))
                {
                    continue;
                }

                var slash = path.LastIndexOf('/');
                if (slash < 0 || Entries.ContainsKey(path[..slash]))
                {
                    deleted.Add(path);
                }
            }
        }

        changed.Sort(StringComparer.Ordinal);
        deleted.Sort(StringComparer.Ordinal);
        return new CacheChanges(changed, deleted, changed.Sum(p => Entries[p].Size));
    }

    /// <summary>
    /// Copies the <paramref name="changes"/> of <paramref name="directory"/> into the empty directory
    /// <paramref name="staging"/> as a tree the layer writer turns into a layer: changed and new files (their content
    /// copied now, so that the next step may write into the cache while the copy is packed and stored), the
    /// directories above them, and an empty <c>.wh.NAME</c> file for each deleted path, the whiteout of the OCI
    /// layer format. Owners, modes and times are those of this manifest. Returns the bytes copied.
    /// </summary>
    /// <remarks>
    /// A file that vanished since the walk (a concurrent <c>shared</c> user) is left out. Hard links are copied as
    /// separate files. A cache file whose own name starts with <c>.wh.</c> would read as a whiteout: caches do not
    /// hold such names.
    /// </remarks>
    public long Stage(string directory, string staging, CacheChanges changes)
    {
        var made = new HashSet<string>(StringComparer.Ordinal) { string.Empty };
        var directories = new List<(string Path, Entry Entry)>();
        long copied = 0;

        void EnsureParent(string rel)
        {
            var slash = rel.LastIndexOf('/');
            var parent = slash < 0 ? string.Empty : rel[..slash];
            if (made.Contains(parent))
            {
                return;
            }

            EnsureParent(parent);
            MakeDirectory(parent);
        }

        void MakeDirectory(string rel)
        {
            if (!made.Add(rel))
            {
                return;
            }

            var target = Path.Join(staging, rel);
            Directory.CreateDirectory(target);
            if (Entries.TryGetValue(rel, out var e))
            {
                directories.Add((rel, e));
            }
        }

        foreach (var rel in changes.Changed)
        {
            var e = Entries[rel];
            EnsureParent(rel);
            var source = Path.Join(directory, rel);
            var target = Path.Join(staging, rel);
            switch (e.Type)
            {
                case FileStat.Directory:
                    MakeDirectory(rel);
                    continue;
                case FileStat.Regular:
                    try
                    {
                        File.Copy(source, target);
                    }
                    catch (Exception x) when (x is FileNotFoundException or DirectoryNotFoundException)
                    {
                        continue;
                    }

                    copied += new FileInfo(target).Length;
                    UnixFile.Chmod(target, e.Mode);
                    break;
                case FileStat.Symlink:
                    File.CreateSymbolicLink(target, e.Link ?? string.Empty);
                    break;
                default:
                    continue; // devices, fifos and sockets have no business in a cache
            }

            UnixFile.Lchown(target, e.Uid, e.Gid);
            UnixFile.SetTimes(target, e.MtimeSeconds, e.MtimeNanoseconds);
        }

        foreach (var rel in changes.Deleted)
        {
            EnsureParent(rel);
            var slash = rel.LastIndexOf('/');
            var whiteout = Path.Join(staging, slash < 0 ? ".wh." + rel : rel[..(slash + 1)] + ".wh." + rel[(slash + 1)..]);
            File.WriteAllBytes(whiteout, []);
        }

        // Directories last, deepest first: writing into one changes its times.
        foreach (var (rel, e) in directories.OrderByDescending(d => d.Path.Length))
        {
            var target = Path.Join(staging, rel);
            UnixFile.Chmod(target, e.Mode);
            UnixFile.Lchown(target, e.Uid, e.Gid);
            UnixFile.SetTimes(target, e.MtimeSeconds, e.MtimeNanoseconds);
        }

        return copied;
    }

    /// <summary>What lstat said of one path.</summary>
    internal readonly record struct Entry(uint Mode, uint Uid, uint Gid, long Size, long MtimeSeconds, uint MtimeNanoseconds, long CtimeSeconds, uint CtimeNanoseconds, ulong Inode, string? Link)
    {
        public uint Type => Mode & FileStat.TypeMask;
    }
}

/// <summary>What a step changed in a cache: paths new or changed, paths deleted, and the bytes of the changed files.</summary>
internal sealed record CacheChanges(IReadOnlyList<string> Changed, IReadOnlyList<string> Deleted, long ChangedBytes)
{
    public bool None => Changed.Count == 0 && Deleted.Count == 0;
}
