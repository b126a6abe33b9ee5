using System.Security.Cryptography;

namespace Farm.Oci;

/// <summary>
/// A read-only stream that hashes what passes through it and, at the end of the content, throws
/// <see cref="DigestMismatchException"/> unless the content has the expected digest and size. A reader that
/// consumes the stream to its end therefore never accepts corrupt content, without buffering the blob.
/// </summary>
/// <remarks>Content longer than the expected size is refused as soon as the excess is read.</remarks>
public sealed class DigestVerifyingStream : IO.ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly Digest _expected;
    private readonly long? _expectedSize;
    private readonly string _what;
    private readonly IDisposable? _owner;
    private readonly IncrementalHash _hash;
    private readonly bool _leaveOpen;
    private long _read;
    private bool _verified;

    /// <param name="inner">The content.</param>
    /// <param name="expected">The digest the content must have.</param>
    /// <param name="expectedSize">The size the content must have, when known.</param>
    /// <param name="what">Names the content in the error, e.g. "blob sha256:... from 127.0.0.1:5100/farm/cache".</param>
    /// <param name="owner">Disposed with the stream (an HTTP response, a file handle).</param>
    /// <param name="leaveOpen">Leave <paramref name="inner"/> open when this stream is disposed.</param>
    public DigestVerifyingStream(Stream inner, Digest expected, long? expectedSize, string what, IDisposable? owner = null, bool leaveOpen = false)
    {
        _leaveOpen = leaveOpen;
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _expected = expected;
        _expectedSize = expectedSize;
        _what = what;
        _owner = owner;
        _hash = expected.CreateHash();
    }

    /// <summary>Bytes read so far.</summary>
    public long BytesRead => _read;

    public override long Length => _expectedSize ?? throw new NotSupportedException();

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        // A zero-length read (TarReader makes them) answers 0 without meaning the end: only a read of nothing into
        // room for something is the end the digest is checked at.
        if (buffer.IsEmpty)
        {
            return 0;
        }

        var n = _inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }

            _owner?.Dispose();
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Account(ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length > 0)
        {
            _read += chunk.Length;
            _hash.AppendData(chunk);
            if (_read > _expectedSize)
            {
                throw new DigestMismatchException(_expected, Digest.FromHash(_expected.Algorithm, _hash.GetCurrentHash()), $"{_what} (longer than its {_expectedSize} bytes)");
            }

            return;
        }

        if (_verified)
        {
            return;
        }

        _verified = true;
        var actual = Digest.FromHash(_expected.Algorithm, _hash.GetHashAndReset());
        if (actual != _expected || (_expectedSize is { } size && size != _read))
        {
            throw new DigestMismatchException(_expected, actual, _expectedSize is { } s && s != _read ? $"{_what} ({_read} of {s} bytes)" : _what);
        }
    }
}
