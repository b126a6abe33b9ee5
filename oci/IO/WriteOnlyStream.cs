namespace Farm.Oci.IO;

/// <summary>
/// A stream that is only written to (a tee, a line splitter, a console): everything but writing is refused once here.
/// Subclasses implement <see cref="Stream.Write(byte[], int, int)"/> (and <see cref="Stream.WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>
/// when they write asynchronously); <see cref="Flush"/> does nothing unless overridden.
/// </summary>
public abstract class WriteOnlyStream : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
