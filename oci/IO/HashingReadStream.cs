using System.Security.Cryptography;

namespace Farm.Oci.IO;

/// <summary>
/// Passes reads through while hashing and counting them, so content is read once for both its consumer and its
/// digest (a diff_id while a layer is applied, a file's sha256 while a context is packed).
/// </summary>
public sealed class HashingReadStream(Stream inner, bool leaveOpen = false) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    /// <summary>Bytes read so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>The sha256 of everything read so far.</summary>
    public Digest Digest() => Oci.Digest.FromHash("sha256", _hash.GetCurrentHash());

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!leaveOpen)
            {
                inner.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private void Account(ReadOnlySpan<byte> chunk)
    {
        _hash.AppendData(chunk);
        BytesRead += chunk.Length;
    }
}
