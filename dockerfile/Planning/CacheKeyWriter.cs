using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Farm.Dockerfile.Planning;

/// <summary>
/// The canonical serialization a cache key hashes, streamed into SHA-256.
/// </summary>
/// <remarks>
/// <para>Format <c>farm-cache-key/v1</c>. A key is <c>sha256:</c> + lower-case hex of SHA-256 over:</para>
/// <list type="number">
/// <item>the header: the field <c>farm-cache-key/v1</c>;</item>
/// <item>then fields, each a <b>name</b> and a <b>value</b>, in the fixed order the planner writes them.</item>
/// </list>
/// <para>Every name and string value is a <i>string field</i>: a 4-byte big-endian length, then that many bytes of
/// UTF-8 (no BOM, no normalization). Null is the length <c>0xFFFFFFFF</c> with no bytes, so null and empty
/// differ. Integers and booleans are string fields of their invariant decimal text (<c>0</c>/<c>1</c> for booleans).
/// A list is its count as an integer field followed by its items. Because every field carries its length, no two
/// different field sequences encode to the same bytes, and nothing depends on .NET's string hashing, culture or
/// JSON settings: the bytes are the same on any runtime version.</para>
/// <para>Any change to what a key covers or to this encoding must bump the version tag, so old entries simply stop
/// matching instead of being misread.</para>
/// </remarks>
public sealed class CacheKeyWriter : IDisposable
{
    /// <summary>The format version tag; the first field of every key.</summary>
    public const string FormatVersion = "farm-cache-key/v1";

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public CacheKeyWriter()
    {
        WriteString(FormatVersion);
    }

    /// <summary>Writes a named string field (null allowed).</summary>
    public CacheKeyWriter Add(string name, string? value)
    {
        WriteString(name);
        WriteString(value);
        return this;
    }

    public CacheKeyWriter Add(string name, long value) => Add(name, value.ToString(CultureInfo.InvariantCulture));

    public CacheKeyWriter Add(string name, bool value) => Add(name, value ? "1" : "0");

    /// <summary>Writes a named list: its count, then each item.</summary>
    public CacheKeyWriter Add(string name, IReadOnlyCollection<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        WriteString(name);
        WriteString(values.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var value in values)
        {
            WriteString(value);
        }

        return this;
    }

    /// <summary>The key: <c>sha256:</c> and the hex hash of everything written. The writer cannot be used after.</summary>
    public string Finish() => "sha256:" + Convert.ToHexStringLower(_hash.GetHashAndReset());

    public void Dispose() => _hash.Dispose();

    private void WriteString(string? value)
    {
        Span<byte> length = stackalloc byte[4];
        if (value is null)
        {
            BinaryPrimitives.WriteUInt32BigEndian(length, uint.MaxValue);
            _hash.AppendData(length);
            return;
        }

        var bytes = Encoding.UTF8.GetBytes(value);
        BinaryPrimitives.WriteUInt32BigEndian(length, (uint)bytes.Length);
        _hash.AppendData(length);
        _hash.AppendData(bytes);
    }
}
