using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Farm.Oci;

namespace Farm.Dockerfile.Context;

/// <summary>
/// Remembers, per context directory, the fingerprint (<see cref="ContextPlan.Fingerprint"/>) of the last packed
/// context with its tar's descriptor and its index: a rebuild whose context has the same paths, sizes, modes,
/// inodes and modification and change times (to the nanosecond) reuses them without reading or hashing a file.
/// One file per context under <c>context-cache</c> in the state directory.
/// </summary>
/// <remarks>
/// A fingerprint is recorded only when nothing in the context changed within <c>racyWindow</c> of the packing (git's
/// "racily clean" rule): a write in the same clock tick as the packing could leave the times as they were.
/// </remarks>
public sealed class ContextStatCache(string directory, TimeSpan racyWindow)
{
    private const string Magic = "farm-context-stat-cache v2";

    /// <summary>The cache of a state directory, with a one-second racy window.</summary>
    public static ContextStatCache In(string stateDirectory) => new(Path.Combine(stateDirectory, "context-cache"), TimeSpan.FromSeconds(1));

    /// <summary>The tar and index recorded for <paramref name="fingerprint"/> of <paramref name="key"/>, if any.</summary>
    public (Descriptor Tar, ContextIndex Index, byte[] IndexBytes)? Find(string key, byte[] fingerprint)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(PathOf(key));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // MAGIC tarDigest tarSize indexLength entriesLength\n INDEX ENTRIES FINGERPRINT
        var newline = Array.IndexOf(bytes, (byte)'\n');
        if (newline < 0)
        {
            return null;
        }

        var header = Encoding.UTF8.GetString(bytes, 0, newline).Split(' ');
        if (header.Length != 6 || $"{header[0]} {header[1]}" != Magic
            || !Digest.TryParse(header[2], out var digest)
            || !long.TryParse(header[3], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
            || !int.TryParse(header[4], NumberStyles.None, CultureInfo.InvariantCulture, out var indexLength)
            || !int.TryParse(header[5], NumberStyles.None, CultureInfo.InvariantCulture, out var entriesLength)
            || (long)newline + 1 + indexLength + entriesLength > bytes.Length)
        {
            return null;
        }

        var rest = bytes.AsSpan(newline + 1);
        if (!rest[(indexLength + entriesLength)..].SequenceEqual(fingerprint))
        {
            return null;
        }

        var index = ReadEntries(bytes, newline + 1 + indexLength, entriesLength);
        return (new Descriptor { MediaType = MediaTypes.OciLayerTar, Digest = digest, Size = size }, index, rest[..indexLength].ToArray());
    }

    /// <summary>Records what <paramref name="plan"/> packed to, unless something in it changed too recently.</summary>
    public void Record(string key, ContextPlan plan, byte[] fingerprint, Descriptor tar, ContextIndex index, byte[] indexBytes, DateTimeOffset packedAt)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(tar);
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(indexBytes);
        var path = PathOf(key);
        if (plan.ChangedSince(packedAt, racyWindow))
        {
            // Not trusted later: drop what an older packing recorded, the next build hashes again.
            if (File.Exists(path))
            {
                File.Delete(path);
            }

            return;
        }

        Directory.CreateDirectory(directory);
        // Unique per write: the local farm daemon records two builds of one context at once.
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            var entries = WriteEntries(index);
            file.Write(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Magic} {tar.Digest} {tar.Size} {indexBytes.Length} {entries.Length}\n")));
            file.Write(indexBytes);
            file.Write(entries);
            file.Write(fingerprint);
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A key per context directory and Dockerfile (whose directory may hold the <c>.dockerignore</c>).</summary>
    public static string Key(string contextDirectory, string dockerfilePath) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(contextDirectory) + "\0" + Path.GetFullPath(dockerfilePath))));

    // The index's entries in binary as well as its JSON: a hit then parses no JSON.
    private static byte[] WriteEntries(ContextIndex index)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(index.Entries.Count);
            foreach (var e in index.Entries)
            {
                writer.Write(e.Path);
                writer.Write((int)e.Type);
                writer.Write(e.Mode);
                writer.Write(e.Size);
                writer.Write(e.Sha256 ?? string.Empty);
                writer.Write(e.LinkTarget is not null);
                writer.Write(e.LinkTarget ?? string.Empty);
            }
        }

        return buffer.ToArray();
    }

    private static ContextIndex ReadEntries(byte[] bytes, int offset, int length)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes, offset, length, writable: false), Encoding.UTF8);
        var count = reader.ReadInt32();
        var entries = new List<ContextEntry>(count);
        for (var i = 0; i < count; i++)
        {
            var path = reader.ReadString();
            var type = (ContextEntryType)reader.ReadInt32();
            var mode = reader.ReadInt32();
            var size = reader.ReadInt64();
            var sha = reader.ReadString();
            var hasTarget = reader.ReadBoolean();
            var target = reader.ReadString();
            entries.Add(new ContextEntry(path, type, mode, size, sha.Length == 0 ? null : sha, hasTarget ? target : null));
        }

        return new ContextIndex(entries);
    }

    private string PathOf(string key) => Path.Combine(directory, key);
}
