using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Farm.Oci.Stores;

/// <summary>
/// Proof that a client holds a blob's content, not only its digest: SHA-256 over a per-build prefix and the content.
/// A shared blob store is content-addressed, so a digest alone names a blob anyone uploaded; a client that names an
/// image it put there (<c>oci-layout://</c> contexts through a remote farm) proves each of its blobs with this, and the
/// coordinator recomputes it from the store. Keyed by the build id, a proof seen once is no use for another build.
/// Written by hand: it is a salted hash, nothing a library offers under a name.
/// </summary>
public static class PossessionProof
{
    /// <summary>The proof of <paramref name="content"/> for <paramref name="buildId"/> and the content's SHA-256 digest, in one pass.</summary>
    public static async Task<(Digest Digest, string Proof)> ComputeAsync(Guid buildId, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var proof = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        proof.AppendData(Prefix(buildId));
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int read;
            while ((read = await content.ReadAsync(buffer.AsMemory(0, buffer.Length), cancellationToken).ConfigureAwait(false)) > 0)
            {
                digest.AppendData(buffer, 0, read);
                proof.AppendData(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return (Digest.FromHash("sha256", digest.GetHashAndReset()), Convert.ToHexStringLower(proof.GetHashAndReset()));
    }

    /// <summary>The proof of bytes in memory.</summary>
    public static string Compute(Guid buildId, ReadOnlySpan<byte> content)
    {
        using var proof = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        proof.AppendData(Prefix(buildId));
        proof.AppendData(content);
        return Convert.ToHexStringLower(proof.GetHashAndReset());
    }

    /// <summary>Whether two proofs are equal, in constant time (a proof is a secret of its build until it runs).</summary>
    public static bool Matches(string? expected, string actual) =>
        expected is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(actual));

    private static byte[] Prefix(Guid buildId) => Encoding.ASCII.GetBytes("farm-possession-v1:" + buildId.ToString("D") + "\n");
}
