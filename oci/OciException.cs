using Farm.Contracts;

namespace Farm.Oci;

/// <summary>A digest string is not <c>algorithm:hex</c> with a supported algorithm and the right length.</summary>
public sealed class InvalidDigestException(string value, string reason)
    : FarmException(FarmErrorCodes.InvalidDigest, $"'{value}' is not a valid digest: {reason}. Expected sha256:<64 hex> or sha512:<128 hex>.")
{
    public string Value { get; } = value;
}

/// <summary>Content did not hash to the digest it was fetched or stored under.</summary>
public sealed class DigestMismatchException(Digest expected, Digest actual, string what)
    : FarmException(FarmErrorCodes.DigestMismatch, $"{what} has digest {actual} but {expected} was expected; the content is corrupt or was tampered with. Remove it and fetch again.")
{
    public Digest Expected { get; } = expected;

    public Digest Actual { get; } = actual;
}

/// <summary>A manifest, index or config document could not be read.</summary>
public sealed class InvalidManifestException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.InvalidManifest, message, inner);
