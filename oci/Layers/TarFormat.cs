using System.Buffers;
using System.Globalization;
using System.Text;

namespace Farm.Oci.Layers;

/// <summary>One tar entry's metadata, as Farm writes and reads it.</summary>
internal sealed class TarHeader
{
    public const byte Regular = (byte)'0';
    public const byte HardLink = (byte)'1';
    public const byte SymLink = (byte)'2';
    public const byte CharDevice = (byte)'3';
    public const byte BlockDevice = (byte)'4';
    public const byte Directory = (byte)'5';
    public const byte Fifo = (byte)'6';

    public required string Name { get; set; }

    public byte TypeFlag { get; set; }

    public uint Mode { get; set; }

    public long Uid { get; set; }

    public long Gid { get; set; }

    public long Size { get; set; }

    public long MtimeSeconds { get; set; }

    public string LinkName { get; set; } = string.Empty;

    public long DevMajor { get; set; }

    public long DevMinor { get; set; }

    /// <summary>Raw xattr values: PAX SCHILY.xattr values are bytes, not text (security.capability is binary).</summary>
    public SortedDictionary<string, byte[]>? Xattrs { get; set; }
}

/// <summary>
/// PAX (POSIX.1-2001) tar headers, written and read by hand.
/// </summary>
/// <remarks>
/// Why not System.Formats.Tar: its PAX extended attributes are a string dictionary encoded as UTF-8, so binary
/// xattr values such as <c>SCHILY.xattr.security.capability</c> cannot be written or read without loss, and its
/// writer looks up user and group names and emits fields we must keep fixed for byte-for-byte reproducible layers.
/// https://github.com/opencontainers/image-spec/blob/main/layer.md#file-attributes
/// </remarks>
internal static class TarFormat
{
    public const int BlockSize = 512;
    private const long MaxOctal7 = 2097151; // 7 octal digits
    private const long MaxOctal11 = 8589934591; // 11 octal digits

    /// <summary>Writes the PAX extended header (when needed) and the ustar header of <paramref name="h"/>.</summary>
    public static void WriteHeader(TarHeader h, Action<ReadOnlySpan<byte>> write)
    {
        var nameBytes = Encoding.UTF8.GetBytes(h.Name);
        var linkBytes = Encoding.UTF8.GetBytes(h.LinkName);
        List<(string Key, byte[] Value)>? pax = null;

        void Add(string key, byte[] value) => (pax ??= []).Add((key, value));

        if (nameBytes.Length > 100)
        {
            Add("path", nameBytes);
        }

        if (linkBytes.Length > 100)
        {
            Add("linkpath", linkBytes);
        }

        if (h.Size > MaxOctal11)
        {
            Add("size", Encoding.ASCII.GetBytes(h.Size.ToString(CultureInfo.InvariantCulture)));
        }

        if (h.Uid > MaxOctal7)
        {
            Add("uid", Encoding.ASCII.GetBytes(h.Uid.ToString(CultureInfo.InvariantCulture)));
        }

        if (h.Gid > MaxOctal7)
        {
            Add("gid", Encoding.ASCII.GetBytes(h.Gid.ToString(CultureInfo.InvariantCulture)));
        }

        if (h.Xattrs is not null)
        {
            foreach (var (name, value) in h.Xattrs)
            {
                Add("SCHILY.xattr." + name, value);
            }
        }

        Span<byte> block = stackalloc byte[BlockSize];
        if (pax is not null)
        {
            var body = EncodePax(pax);
            block.Clear();
            // A fixed name keeps the archive independent of the tool; readers ignore it.
            FillUstar(block, "PaxHeader"u8, 'x', 0b110_100_100, 0, 0, body.Length, 0, [], 0, 0);
            write(block);
            write(body);
            WritePadding(body.Length, write);
        }

        block.Clear();
        FillUstar(
            block,
            nameBytes.Length > 100 ? nameBytes.AsSpan(0, 100) : nameBytes,
            (char)h.TypeFlag,
            h.Mode,
            Math.Min(h.Uid, MaxOctal7),
            Math.Min(h.Gid, MaxOctal7),
            Math.Min(h.Size, MaxOctal11),
            Math.Clamp(h.MtimeSeconds, 0, MaxOctal11),
            linkBytes.Length > 100 ? linkBytes.AsSpan(0, 100) : linkBytes,
            h.DevMajor,
            h.DevMinor);
        write(block);
    }

    public static void WritePadding(long size, Action<ReadOnlySpan<byte>> write)
    {
        var pad = (int)((BlockSize - (size % BlockSize)) % BlockSize);
        if (pad > 0)
        {
            Span<byte> zeros = stackalloc byte[BlockSize];
            zeros.Clear();
            write(zeros[..pad]);
        }
    }

    private static byte[] EncodePax(List<(string Key, byte[] Value)> records)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (var (key, value) in records)
        {
            // "<len> <key>=<value>\n" where len counts its own digits.
            var rest = Encoding.UTF8.GetByteCount(key) + value.Length + 3;
            var len = rest + 1;
            while (len.ToString(CultureInfo.InvariantCulture).Length + rest != len)
            {
                len++;
            }

            Encoding.ASCII.GetBytes(len.ToString(CultureInfo.InvariantCulture), output);
            output.Write(" "u8);
            Encoding.UTF8.GetBytes(key, output);
            output.Write("="u8);
            output.Write(value);
            output.Write("\n"u8);
        }

        return output.WrittenSpan.ToArray();
    }

    private static void FillUstar(
        Span<byte> b, ReadOnlySpan<byte> name, char type, uint mode, long uid, long gid, long size, long mtime,
        ReadOnlySpan<byte> link, long devMajor, long devMinor)
    {
        name.CopyTo(b[..100]);
        Octal(b.Slice(100, 8), mode & 0xFFF);
        Octal(b.Slice(108, 8), uid);
        Octal(b.Slice(116, 8), gid);
        Octal(b.Slice(124, 12), size);
        Octal(b.Slice(136, 12), mtime);
        b[156] = (byte)type;
        link.CopyTo(b.Slice(157, 100));
        "ustar\0"u8.CopyTo(b[257..]);
        "00"u8.CopyTo(b[263..]);
        // uname and gname stay empty so owners are numeric only and the bytes do not depend on /etc/passwd.
        if (type is '3' or '4')
        {
            Octal(b.Slice(329, 8), devMajor);
            Octal(b.Slice(337, 8), devMinor);
        }

        b.Slice(148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var x in b)
        {
            sum += x;
        }

        Octal(b.Slice(148, 7), sum);
        b[155] = (byte)' ';
    }

    private static void Octal(Span<byte> field, long value)
    {
        // width-1 zero-padded octal digits and a NUL, as GNU tar and Go write them.
        var digits = field.Length - 1;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }

        field[digits] = 0;
    }

    /// <summary>Parses a numeric header field: octal text, or GNU base-256 when the high bit is set.</summary>
    public static long ParseNumber(ReadOnlySpan<byte> field)
    {
        if (field.Length > 0 && (field[0] & 0x80) != 0)
        {
            long v = field[0] & 0x3F;
            if ((field[0] & 0x40) != 0)
            {
                throw new InvalidLayerTarException("A tar header has a negative base-256 number.");
            }

            for (var i = 1; i < field.Length; i++)
            {
                if (v > (long.MaxValue >> 8))
                {
                    throw new InvalidLayerTarException("A tar header has a base-256 number that overflows.");
                }

                v = (v << 8) | field[i];
            }

            return v;
        }

        long result = 0;
        var seen = false;
        foreach (var c in field)
        {
            if (c is (byte)' ' or 0)
            {
                if (seen)
                {
                    break;
                }

                continue;
            }

            if (c is < (byte)'0' or > (byte)'7')
            {
                throw new InvalidLayerTarException($"A tar header has a numeric field with the non-octal byte 0x{c:x2}.");
            }

            seen = true;
            result = (result << 3) | (long)(c - '0');
        }

        return result;
    }

    public static string ParseString(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    public static bool ChecksumMatches(ReadOnlySpan<byte> b)
    {
        var stored = ParseNumber(b.Slice(148, 8));
        long unsigned = 0;
        long signed = 0;
        for (var i = 0; i < BlockSize; i++)
        {
            var x = i is >= 148 and < 156 ? (byte)' ' : b[i];
            unsigned += x;
            signed += (sbyte)x;
        }

        // Some old tars summed signed bytes; accept both, as GNU tar does.
        return stored == unsigned || stored == signed;
    }
}
