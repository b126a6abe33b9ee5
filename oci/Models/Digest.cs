using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Farm.Oci;

/// <summary>
/// A content digest, <c>algorithm:encoded</c>. Only the registered algorithms sha256 and sha512 are accepted,
/// with lower-case hex of the right length.
/// </summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests</remarks>
[JsonConverter(typeof(DigestJsonConverter))]
public readonly record struct Digest
{
    private Digest(string algorithm, string encoded)
    {
        Algorithm = algorithm;
        Encoded = encoded;
    }

    /// <summary>Algorithm name, <c>sha256</c> or <c>sha512</c>.</summary>
    public string Algorithm { get; }

    /// <summary>Lower-case hex of the hash.</summary>
    public string Encoded { get; }

    /// <summary>True for <c>default(Digest)</c>.</summary>
    public bool IsEmpty => Algorithm is null;

    public static Digest Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryParse(value, out var digest, out var reason) ? digest : throw new InvalidDigestException(value, reason);
    }

    public static bool TryParse(string? value, out Digest digest) => TryParse(value, out digest, out _);

    /// <summary>Wraps a hash that was computed with <paramref name="algorithm"/>.</summary>
    public static Digest FromHash(string algorithm, ReadOnlySpan<byte> hash) =>
        Parse($"{algorithm}:{Convert.ToHexStringLower(hash)}");

    public static Digest Sha256(ReadOnlySpan<byte> content) => FromHash("sha256", SHA256.HashData(content));

    public static Digest Sha256(Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return FromHash("sha256", SHA256.HashData(content));
    }

    public static async Task<Digest> Sha256Async(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var hash = await SHA256.HashDataAsync(content, cancellationToken).ConfigureAwait(false);
        return FromHash("sha256", hash);
    }

    /// <summary>Creates the incremental hash that produces digests of this digest's algorithm.</summary>
    public IncrementalHash CreateHash() => Algorithm switch
    {
        "sha256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        "sha512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
        _ => throw new InvalidOperationException("An empty digest has no algorithm."),
    };

    public override string ToString() => IsEmpty ? string.Empty : $"{Algorithm}:{Encoded}";

    /// <summary>Parses <paramref name="value"/>, or says in <paramref name="reason"/> why it is not a digest.</summary>
    public static bool TryParse(string? value, out Digest digest, out string reason)
    {
        digest = default;
        if (string.IsNullOrEmpty(value))
        {
            reason = "it is empty";
            return false;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            reason = "it has no algorithm prefix";
            return false;
        }

        var algorithm = value[..colon];
        var encoded = value[(colon + 1)..];
        var length = algorithm switch { "sha256" => 64, "sha512" => 128, _ => -1 };
        if (length < 0)
        {
            reason = $"algorithm '{algorithm}' is not supported";
            return false;
        }

        if (encoded.Length != length)
        {
            reason = $"a {algorithm} digest has {length} hex characters, not {encoded.Length}";
            return false;
        }

        if (encoded.AsSpan().IndexOfAnyExcept(LowerHex) >= 0)
        {
            reason = "the encoded part must be lower-case hex";
            return false;
        }

        digest = new Digest(algorithm, encoded);
        reason = string.Empty;
        return true;
    }

    private static readonly SearchValues<char> LowerHex = SearchValues.Create("0123456789abcdef");
}

internal sealed class DigestJsonConverter : JsonConverter<Digest>
{
    public override Digest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        try
        {
            return Digest.Parse(text ?? string.Empty);
        }
        catch (InvalidDigestException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, Digest value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString());
}
