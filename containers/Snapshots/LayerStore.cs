using System.Collections.Concurrent;
using System.Globalization;
using Farm.Contracts;

namespace Farm.Containers.Snapshots;

/// <summary>
/// The worker's local store of extracted layers, keyed by diff_id: each layer is extracted once, even when many
/// jobs ask for it at the same time, and the least recently used ones are evicted once the store outgrows its
/// budget. A layer is extracted into a temporary directory and renamed into place when complete, so a worker that
/// dies mid-extraction never uses a half-extracted layer; leftovers are removed when the store opens.
/// </summary>
/// <remarks>
/// Directory names are short (16 hex characters of the diff_id) because every lower directory of an overlay mount
/// goes into one mount option string, which the kernel limits to a page.
/// </remarks>
public sealed class LayerStore
{
    /// <summary>
    /// Extracts a layer, read from the blob store at <paramref name="source"/>, into an empty directory as an overlay
    /// lower directory (whiteouts as 0/0 devices).
    /// </summary>
    public delegate Task ExtractLayer(LayerRef layer, string source, string targetDirectory, CancellationToken cancellationToken);

    private const string TempPrefix = "tmp-";
    private const string SizeFile = "size";
    private readonly string _root;
    private readonly long _budgetBytes;
    private readonly ExtractLayer _extract;
    private readonly ConcurrentDictionary<string, Lazy<Task<StoredLayer>>> _inFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private long _clock;

    public LayerStore(string root, long budgetBytes, ExtractLayer extract)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentNullException.ThrowIfNull(extract);
        _root = Path.GetFullPath(root);
        _budgetBytes = budgetBytes;
        _extract = extract;
        Directory.CreateDirectory(_root);
        Recover();
    }

    /// <summary>The root directory; layer directories are <c>ROOT/ID/fs</c>.</summary>
    public string Root => _root;

    /// <summary>Bytes of extracted layers on disk.</summary>
    public long SizeBytes
    {
        get
        {
            lock (_lock)
            {
                return _entries.Values.Sum(e => e.Size);
            }
        }
    }

    /// <summary>Number of layers held.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>How many extractions ran since the store opened (a reuse does not count).</summary>
    public int Extractions => Volatile.Read(ref _extractions);

    private int _extractions;

    /// <summary>
    /// Makes sure the layer is extracted and leases it: a leased layer is never evicted. Dispose the lease when the
    /// job no longer needs the directory.
    /// </summary>
    public async Task<LayerLease> AcquireAsync(LayerRef layer, string source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var id = IdOf(layer.DiffId);
        while (true)
        {
            lock (_lock)
            {
                if (_entries.TryGetValue(id, out var entry))
                {
                    entry.Leases++;
                    entry.Fresh = false;
                    entry.LastUse = ++_clock;
                    return new LayerLease(this, id, FsDirectory(id));
                }
            }

            var work = _inFlight.GetOrAdd(id, key => new Lazy<Task<StoredLayer>>(() => ExtractAsync(layer, source, key)));
            try
            {
                // Extraction is shared: one caller's cancellation must not fail the others, so only the wait is cancelled.
                await work.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<StoredLayer>>>(id, work));
                throw;
            }

            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<StoredLayer>>>(id, work));
        }
    }

    internal void Release(string id)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(id, out var entry))
            {
                entry.Leases--;
            }
        }

        Evict();
    }

    private async Task<StoredLayer> ExtractAsync(LayerRef layer, string source, string id)
    {
        var temp = Path.Combine(_root, TempPrefix + Guid.NewGuid().ToString("N")[..12]);
        var fs = Path.Combine(temp, "fs");
        Directory.CreateDirectory(fs);
        try
        {
            await _extract(layer, source, fs, CancellationToken.None).ConfigureAwait(false);
            var size = MeasureBytes(fs);
            await File.WriteAllTextAsync(Path.Combine(temp, SizeFile), size.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            var final = Path.Combine(_root, id);
            if (Directory.Exists(final))
            {
                // Another worker process sharing the directory finished first; its copy is as good as ours.
                Directory.Delete(temp, recursive: true);
            }
            else
            {
                Directory.Move(temp, final);
            }

            Interlocked.Increment(ref _extractions);
            lock (_lock)
            {
                // Fresh until its first lease, so eviction cannot take it from the callers waiting for it.
                _entries[id] = new Entry { Size = size, LastUse = ++_clock, Fresh = true };
            }

            return new StoredLayer(id, size);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private void Evict()
    {
        List<string> victims = [];
        lock (_lock)
        {
            var total = _entries.Values.Sum(e => e.Size);
            foreach (var (id, entry) in _entries.Where(e => e.Value.Leases == 0 && !e.Value.Fresh).OrderBy(e => e.Value.LastUse).ToList())
            {
                if (total <= _budgetBytes)
                {
                    break;
                }

                total -= entry.Size;
                _entries.Remove(id);
                victims.Add(id);
            }
        }

        foreach (var id in victims)
        {
            // Rename first so a concurrent reader never sees a half-deleted layer under its real name.
            var doomed = Path.Combine(_root, TempPrefix + "evict-" + id);
            try
            {
                Directory.Move(Path.Combine(_root, id), doomed);
            }
            catch (IOException)
            {
                continue;
            }

            TryDelete(doomed);
        }
    }

    private void Recover()
    {
        foreach (var dir in Directory.EnumerateDirectories(_root))
        {
            var name = Path.GetFileName(dir);
            var sizeFile = Path.Combine(dir, SizeFile);
            if (name.StartsWith(TempPrefix, StringComparison.Ordinal) || !File.Exists(sizeFile))
            {
                TryDelete(dir);
                continue;
            }

            var size = long.TryParse(File.ReadAllText(sizeFile), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0;
            _entries[name] = new Entry { Size = size, LastUse = Directory.GetLastWriteTimeUtc(dir).Ticks / TimeSpan.TicksPerSecond };
        }

        _clock = _entries.Count == 0 ? 0 : _entries.Values.Max(e => e.LastUse);
    }

    private string FsDirectory(string id) => Path.Combine(_root, id, "fs");

    private static string IdOf(string diffId)
    {
        var colon = diffId.IndexOf(':', StringComparison.Ordinal);
        var hex = colon >= 0 ? diffId[(colon + 1)..] : diffId;
        if (hex.Length < 16 || !hex.All(char.IsAsciiHexDigitLower))
        {
            throw new ArgumentException($"'{diffId}' is not a diff_id digest.", nameof(diffId));
        }

        return hex[..16];
    }

    private static long MeasureBytes(string dir)
    {
        var sizes = new System.IO.Enumeration.FileSystemEnumerable<long>(
            dir,
            (ref System.IO.Enumeration.FileSystemEntry e) => e.IsDirectory || (e.Attributes & FileAttributes.ReparsePoint) != 0 ? 512 : e.Length,
            new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
        {
            // A symbolic link to a directory is a link, not a directory to walk: Debian's node packages link directories
            // to their siblings (usr/share/doc/node-object-keys/node-resolve -> ../node-resolve), and following them
            // never ends.
            ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => (e.Attributes & FileAttributes.ReparsePoint) == 0,
        };
        return sizes.Sum();
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed class Entry
    {
        public long Size { get; init; }

        public long LastUse { get; set; }

        public int Leases { get; set; }

        public bool Fresh { get; set; }
    }

    private sealed record StoredLayer(string Id, long Size);
}

/// <summary>A layer directory held for the duration of a job.</summary>
public sealed class LayerLease : IDisposable
{
    private readonly LayerStore _store;
    private readonly string _id;
    private int _disposed;

    internal LayerLease(LayerStore store, string id, string directory)
    {
        _store = store;
        _id = id;
        Directory = directory;
    }

    /// <summary>The extracted layer, usable as an overlay lower directory.</summary>
    public string Directory { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _store.Release(_id);
        }
    }
}
