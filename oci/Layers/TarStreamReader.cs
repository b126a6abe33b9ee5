using System.Globalization;
using System.Text;

namespace Farm.Oci.Layers;

/// <summary>
/// Reads tar entries (ustar, PAX, GNU long names) from a forward-only stream, keeping PAX values as bytes.
/// </summary>
/// <remarks>Hand-written for the reason given on <see cref="TarFormat"/>: binary SCHILY.xattr values.</remarks>
internal sealed class TarStreamReader(Stream stream)
{
    private const long MaxMetadataSize = 16 << 20;
    private readonly byte[] _block = new byte[TarFormat.BlockSize];
    private long _remaining;
    private long _padding;

    /// <summary>The next entry, or null at the end of the archive.</summary>
    public TarHeader? Next()
    {
        Skip(_remaining + _padding);
        _remaining = _padding = 0;
        Dictionary<string, byte[]>? pax = null;
        string? longName = null;
        string? longLink = null;
        while (true)
        {
            var n = stream.ReadAtLeast(_block, TarFormat.BlockSize, throwOnEndOfStream: false);
            if (n == 0)
            {
                return null; // some writers omit the two zero blocks
            }

            if (n < TarFormat.BlockSize)
            {
                throw new InvalidLayerTarException("The layer tar is truncated inside a header.");
            }

            if (_block.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                return null;
            }

            if (!TarFormat.ChecksumMatches(_block))
            {
                throw new InvalidLayerTarException("A tar header of the layer has a wrong checksum.");
            }

            var b = _block.AsSpan();
            var type = b[156];
            var size = TarFormat.ParseNumber(b.Slice(124, 12));
            switch (type)
            {
                case (byte)'x':
                    pax ??= new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    ParsePax(ReadMetadata(size), pax);
                    continue;
                case (byte)'g':
                    ReadMetadata(size); // global defaults: no layer writer Farm knows relies on them
                    continue;
                case (byte)'L':
                    longName = CString(ReadMetadata(size));
                    continue;
                case (byte)'K':
                    longLink = CString(ReadMetadata(size));
                    continue;
                default:
                    break;
            }

            var name = TarFormat.ParseString(b[..100]);
            if (b.Slice(257, 5).SequenceEqual("ustar"u8))
            {
                var prefix = TarFormat.ParseString(b.Slice(345, 155));
                if (prefix.Length > 0)
                {
                    name = prefix + "/" + name;
                }
            }

            var h = new TarHeader
            {
                Name = longName ?? name,
                TypeFlag = type,
                Mode = (uint)(TarFormat.ParseNumber(b.Slice(100, 8)) & 0xFFF),
                Uid = TarFormat.ParseNumber(b.Slice(108, 8)),
                Gid = TarFormat.ParseNumber(b.Slice(116, 8)),
                Size = size,
                MtimeSeconds = TarFormat.ParseNumber(b.Slice(136, 12)),
                LinkName = longLink ?? TarFormat.ParseString(b.Slice(157, 100)),
                DevMajor = TarFormat.ParseNumber(b.Slice(329, 8)),
                DevMinor = TarFormat.ParseNumber(b.Slice(337, 8)),
            };
            if (pax is not null)
            {
                ApplyPax(h, pax);
            }

            if (h.TypeFlag is 0 or (byte)'7')
            {
                h.TypeFlag = TarHeader.Regular;
            }

            if (h.TypeFlag == TarHeader.Regular && h.Name.EndsWith('/'))
            {
                h.TypeFlag = TarHeader.Directory; // pre-POSIX tars mark directories by the trailing slash only
            }

            if (h.TypeFlag is < TarHeader.Regular or > TarHeader.Fifo)
            {
                throw new InvalidLayerTarException(
                    $"Layer entry '{h.Name}' has tar type '{(char)h.TypeFlag}', which OCI layers do not use (sparse, multi-volume or vendor entries).");
            }

            if (h.Size < 0)
            {
                throw new InvalidLayerTarException($"Layer entry '{h.Name}' has a negative size.");
            }

            // Only regular files carry data; a size on other entries is skipped, as GNU tar does.
            _remaining = h.Size;
            _padding = (TarFormat.BlockSize - (h.Size % TarFormat.BlockSize)) % TarFormat.BlockSize;
            if (h.TypeFlag != TarHeader.Regular)
            {
                h.Size = 0;
            }

            return h;
        }
    }

    /// <summary>Reads the current entry's data; 0 at its end.</summary>
    public int Read(Span<byte> buffer)
    {
        if (_remaining == 0)
        {
            return 0;
        }

        if (buffer.Length > _remaining)
        {
            buffer = buffer[..(int)_remaining];
        }

        var n = stream.Read(buffer);
        if (n == 0)
        {
            throw new InvalidLayerTarException("The layer tar is truncated inside a file's data.");
        }

        _remaining -= n;
        return n;
    }

    private void Skip(long count)
    {
        var buffer = count > 0 ? new byte[(int)Math.Min(count, 1 << 16)] : [];
        while (count > 0)
        {
            var n = stream.Read(buffer, 0, (int)Math.Min(count, buffer.Length));
            if (n == 0)
            {
                throw new InvalidLayerTarException("The layer tar is truncated inside a file's data.");
            }

            count -= n;
        }
    }

    private byte[] ReadMetadata(long size)
    {
        if (size is < 0 or > MaxMetadataSize)
        {
            throw new InvalidLayerTarException($"A tar metadata header claims {size} bytes; Farm accepts up to {MaxMetadataSize}.");
        }

        var data = new byte[size];
        if (stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false) < data.Length)
        {
            throw new InvalidLayerTarException("The layer tar is truncated inside a PAX or GNU long-name header.");
        }

        Skip((TarFormat.BlockSize - (size % TarFormat.BlockSize)) % TarFormat.BlockSize);
        return data;
    }

    private static string CString(byte[] data)
    {
        var end = Array.IndexOf(data, (byte)0);
        return Encoding.UTF8.GetString(data, 0, end < 0 ? data.Length : end);
    }

    private static void ParsePax(byte[] data, Dictionary<string, byte[]> records)
    {
        var pos = 0;
        while (pos < data.Length)
        {
            var space = Array.IndexOf(data, (byte)' ', pos);
            if (space < 0 || !int.TryParse(data.AsSpan(pos, space - pos), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
                || length <= space - pos || pos + length > data.Length || data[pos + length - 1] != (byte)'\n')
            {
                throw new InvalidLayerTarException("A PAX header of the layer is malformed.");
            }

            var record = data.AsSpan(space + 1, pos + length - space - 2);
            var eq = record.IndexOf((byte)'=');
            if (eq <= 0)
            {
                throw new InvalidLayerTarException("A PAX record of the layer has no key.");
            }

            records[Encoding.UTF8.GetString(record[..eq])] = record[(eq + 1)..].ToArray();
            pos += length;
        }
    }

    private static void ApplyPax(TarHeader h, Dictionary<string, byte[]> pax)
    {
        foreach (var (key, value) in pax)
        {
            switch (key)
            {
                case "path":
                    h.Name = Encoding.UTF8.GetString(value);
                    break;
                case "linkpath":
                    h.LinkName = Encoding.UTF8.GetString(value);
                    break;
                case "size":
                    h.Size = Decimal(key, value);
                    break;
                case "uid":
                    h.Uid = Decimal(key, value);
                    break;
                case "gid":
                    h.Gid = Decimal(key, value);
                    break;
                case "mtime":
                    var text = Encoding.ASCII.GetString(value);
                    var dot = text.IndexOf('.', StringComparison.Ordinal);
                    h.MtimeSeconds = long.TryParse(dot < 0 ? text : text[..dot], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var m)
                        ? m
                        : throw new InvalidLayerTarException($"A PAX mtime '{text}' is not a number.");
                    break;
                default:
                    if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                    {
                        (h.Xattrs ??= new SortedDictionary<string, byte[]>(StringComparer.Ordinal))[key["SCHILY.xattr.".Length..]] = value;
                    }

                    break;
            }
        }
    }

    private static long Decimal(string key, byte[] value) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new InvalidLayerTarException($"The PAX record '{key}' is not a decimal number.");
}
