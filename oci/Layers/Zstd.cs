using System.Runtime.InteropServices;

namespace Farm.Oci.Layers;

/// <summary>
/// A small binding to Debian's libzstd.so.1 (package libzstd1).
/// </summary>
/// <remarks>
/// Why not ZstdSharp.Port: the managed port compresses on one thread, while libzstd's ZSTD_c_nbWorkers splits
/// the stream into jobs compressed on several threads with overlapping windows, the same code path as
/// <c>zstd -T0</c>. Its output is identical for any worker count of one or more, so layers stay reproducible
/// across machines with different core counts (given the same libzstd version).
/// </remarks>
internal static unsafe partial class Zstd
{
    private const string Lib = "libzstd.so.1";

    public const int DefaultLevel = 3;

    [StructLayout(LayoutKind.Sequential)]
    public struct Buffer
    {
        public byte* Data;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport(Lib, EntryPoint = "ZSTD_createCCtx")]
    public static partial nint CreateCCtx();

    [LibraryImport(Lib, EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCCtx(nint cctx);

    [LibraryImport(Lib, EntryPoint = "ZSTD_CCtx_setParameter")]
    public static partial nuint CCtxSetParameter(nint cctx, int parameter, int value);

    [LibraryImport(Lib, EntryPoint = "ZSTD_compressStream2")]
    public static partial nuint CompressStream2(nint cctx, Buffer* output, Buffer* input, int endOp);

    [LibraryImport(Lib, EntryPoint = "ZSTD_createDCtx")]
    public static partial nint CreateDCtx();

    [LibraryImport(Lib, EntryPoint = "ZSTD_freeDCtx")]
    public static partial nuint FreeDCtx(nint dctx);

    [LibraryImport(Lib, EntryPoint = "ZSTD_DCtx_setParameter")]
    public static partial nuint DCtxSetParameter(nint dctx, int parameter, int value);

    [LibraryImport(Lib, EntryPoint = "ZSTD_decompressStream")]
    public static partial nuint DecompressStream(nint dctx, Buffer* output, Buffer* input);

    [LibraryImport(Lib, EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(Lib, EntryPoint = "ZSTD_getErrorName")]
    public static partial byte* GetErrorName(nuint code);

    [LibraryImport(Lib, EntryPoint = "ZSTD_CStreamOutSize")]
    public static partial nuint CStreamOutSize();

    public static nuint Check(nuint code, string what) =>
        IsError(code) != 0
            ? throw new LayerCompressionException($"zstd {what} failed: {Marshal.PtrToStringUTF8((nint)GetErrorName(code))}.")
            : code;
}

/// <summary>A multi-threaded zstd compressor fed chunk by chunk; output goes to a callback in order.</summary>
internal sealed unsafe class ZstdEncoder : IDisposable
{
    private const int ParamCompressionLevel = 100;
    private const int ParamChecksumFlag = 201;
    private const int ParamNbWorkers = 400;

    private readonly nint _cctx;
    private readonly byte[] _out = new byte[1 << 20];

    public ZstdEncoder(int level, int workers)
    {
        _cctx = Zstd.CreateCCtx();
        if (_cctx == 0)
        {
            throw new LayerCompressionException("zstd could not allocate a compression context.");
        }

        Zstd.Check(Zstd.CCtxSetParameter(_cctx, ParamCompressionLevel, level), "setting the level");
        // The frame checksum lets readers (and zstd -t) detect corruption, as the zstd CLI does by default.
        Zstd.Check(Zstd.CCtxSetParameter(_cctx, ParamChecksumFlag, 1), "enabling the checksum");
        Zstd.Check(Zstd.CCtxSetParameter(_cctx, ParamNbWorkers, Math.Max(1, workers)), "setting the worker count");
    }

    /// <summary>Feeds <paramref name="input"/>; after the final chunk the frame is ended. Calls <paramref name="emit"/> with each piece of output.</summary>
    public void Compress(ReadOnlySpan<byte> input, bool final, Action<byte[], int> emit)
    {
        fixed (byte* i = input)
        fixed (byte* o = _out)
        {
            var inBuf = new Zstd.Buffer { Data = i, Size = (nuint)input.Length, Pos = 0 };
            while (true)
            {
                var outBuf = new Zstd.Buffer { Data = o, Size = (nuint)_out.Length, Pos = 0 };
                var remaining = Zstd.Check(Zstd.CompressStream2(_cctx, &outBuf, &inBuf, final ? 2 : 0), "compression");
                if (outBuf.Pos > 0)
                {
                    emit(_out, (int)outBuf.Pos);
                }

                var inputDone = inBuf.Pos == inBuf.Size;
                if (final ? remaining == 0 : inputDone)
                {
                    return;
                }
            }
        }
    }

    public void Dispose() => Zstd.FreeCCtx(_cctx);
}

/// <summary>A read-only stream that decompresses zstd frames (one or more, concatenated) from an inner stream.</summary>
public sealed unsafe class ZstdDecompressStream : Stream
{
    private const int ParamWindowLogMax = 100;

    private readonly Stream _inner;
    private readonly byte[] _in = new byte[1 << 17];
    private nint _dctx;
    private int _inPos;
    private int _inLen;
    private bool _innerDone;
    private nuint _lastHint = 1;

    public ZstdDecompressStream(Stream inner)
    {
        _inner = inner;
        _dctx = Zstd.CreateDCtx();
        if (_dctx == 0)
        {
            throw new LayerCompressionException("zstd could not allocate a decompression context.");
        }

        // Accept frames written with --long (windows up to 2 GiB), which registries do carry.
        Zstd.Check(Zstd.DCtxSetParameter(_dctx, ParamWindowLogMax, 31), "setting the window limit");
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            if (_inPos == _inLen && !_innerDone)
            {
                _inLen = _inner.Read(_in, 0, _in.Length);
                _inPos = 0;
                _innerDone = _inLen == 0;
            }

            if (_inPos == _inLen && _innerDone)
            {
                // A hint of 0 means the last frame ended cleanly; anything else is a truncated stream.
                return _lastHint == 0 ? 0 : throw new LayerCompressionException("The zstd stream ends in the middle of a frame.");
            }

            fixed (byte* o = buffer)
            fixed (byte* i = _in)
            {
                var inBuf = new Zstd.Buffer { Data = i + _inPos, Size = (nuint)(_inLen - _inPos), Pos = 0 };
                var outBuf = new Zstd.Buffer { Data = o, Size = (nuint)buffer.Length, Pos = 0 };
                _lastHint = Zstd.Check(Zstd.DecompressStream(_dctx, &outBuf, &inBuf), "decompression");
                _inPos += (int)inBuf.Pos;
                if (outBuf.Pos > 0)
                {
                    return (int)outBuf.Pos;
                }
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (_dctx != 0)
        {
            Zstd.FreeDCtx(_dctx);
            _dctx = 0;
        }

        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
