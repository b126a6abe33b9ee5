using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Farm.Dockerfile.Context;
using Farm.Oci;

namespace Farm.Cli.Build;

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
internal sealed class ContextStatCache(string directory, TimeSpan racyWindow)
{
    private const string Magic = "farm-context-stat-cache v1";

    /// <summary>The cache of a state directory, with a one-second racy window.</summary>
    public static ContextStatCache In(string stateDirectory) => new(Path.Combine(stateDirectory, "context-cache"), TimeSpan.FromSeconds(1));

    /// <summary>The tar and index recorded for <paramref name="fingerprint"/> of <paramref name="key"/>, if any.</summary>
    public (Descriptor Tar, byte[] Index)? Find(string key, byte[] fingerprint)
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

        // MAGIC tarDigest tarSize indexLength\n INDEX FINGERPRINT
        var newline = Array.IndexOf(bytes, (byte)'\n');
        if (newline < 0)
        {
            return null;
        }

        var header = Encoding.UTF8.GetString(bytes, 0, newline).Split(' ');
        if (header.Length != 5 || $"{header[0]} {header[1]}" != Magic
            || !Digest.TryParse(header[2], out var digest)
            || !long.TryParse(header[3], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
            || !int.TryParse(header[4], NumberStyles.None, CultureInfo.InvariantCulture, out var indexLength)
            || newline + 1 + indexLength > bytes.Length)
        {
            return null;
        }

        var rest = bytes.AsSpan(newline + 1);
        if (!rest[indexLength..].SequenceEqual(fingerprint))
        {
            return null;
        }

        return (new Descriptor { MediaType = MediaTypes.OciLayerTar, Digest = digest, Size = size }, rest[..indexLength].ToArray());
    }

    /// <summary>Records what <paramref name="plan"/> packed to, unless something in it changed too recently.</summary>
    public void Record(string key, ContextPlan plan, byte[] fingerprint, Descriptor tar, byte[] index, DateTimeOffset packedAt)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(tar);
        ArgumentNullException.ThrowIfNull(index);
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
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Magic} {tar.Digest} {tar.Size} {index.Length}\n")));
            file.Write(index);
            file.Write(fingerprint);
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A key per context directory and Dockerfile (whose directory may hold the <c>.dockerignore</c>).</summary>
    public static string Key(string contextDirectory, string dockerfilePath) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(contextDirectory) + "\0" + Path.GetFullPath(dockerfilePath))));

    private string PathOf(string key) => Path.Combine(directory, key);
}
