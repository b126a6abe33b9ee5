using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;
using Farm.Oci.IO;

namespace Farm.Dockerfile.Context;

/// <summary>
/// Checks that a context index describes its context tar: the index is what cache keys are made from, the tar is what
/// workers copy, so a client that sent an index of other files than its tar would poison the cache for every build that
/// later computes the same keys. The index is derived again from the tar, entry by entry, in one read, and compared.
/// </summary>
public static class ContextIndexVerifier
{
    /// <summary>The index the packer would have written beside <paramref name="tar"/> (a context tar, GNU or PAX).</summary>
    /// <exception cref="ContextIndexMismatchException">The tar is not a context tar (an entry of another kind, a path that is not relative).</exception>
    public static async Task<ContextIndex> DeriveAsync(Stream tar, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tar);
        var entries = new List<ContextEntry>();
        var reader = new TarReader(tar, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            while (await NextAsync(reader, entries.Count, cancellationToken).ConfigureAwait(false) is { } entry)
            {
                var path = entry.Name.TrimEnd('/');
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        entries.Add(new ContextEntry(path, ContextEntryType.Directory, (int)entry.Mode, 0, null, null));
                        break;
                    case TarEntryType.SymbolicLink:
                        entries.Add(new ContextEntry(path, ContextEntryType.Symlink, 0x1ff, 0, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(entry.LinkName))), entry.LinkName));
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                        using (var hashing = new HashingReadStream(entry.DataStream ?? Stream.Null, leaveOpen: true))
                        {
                            await hashing.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
                            entries.Add(new ContextEntry(path, ContextEntryType.File, (int)entry.Mode, hashing.BytesRead, hashing.Digest().Encoded, null));
                        }

                        break;
                    default:
                        throw new ContextIndexMismatchException($"the context tar holds '{entry.Name}', a {entry.EntryType} entry, which no build context has");
                }
            }
        }

        // The end-of-archive blocks and padding: read to the end, so a digest-verifying source checks the whole blob.
        await tar.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        return new ContextIndex(entries);
    }

    /// <summary>
    /// The next entry; null at the end. An empty context packs to an empty tar (no entries, no end-of-archive blocks),
    /// which TarReader reading a stream that cannot seek takes for a truncated one.
    /// </summary>
    private static async Task<TarEntry?> NextAsync(TarReader reader, int read, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException) when (read == 0)
        {
            return null;
        }
    }

    /// <summary>Throws unless <paramref name="index"/> is exactly the index of <paramref name="tar"/>.</summary>
    /// <exception cref="ContextIndexMismatchException">An entry differs, is missing, or is extra; the message names the first.</exception>
    public static async Task VerifyAsync(ContextIndex index, Stream tar, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(index);
        var actual = (await DeriveAsync(tar, cancellationToken).ConfigureAwait(false)).Entries;
        var claimed = index.Entries;
        for (var i = 0; i < Math.Max(actual.Count, claimed.Count); i++)
        {
            var has = i < actual.Count ? actual[i] : null;
            var says = i < claimed.Count ? claimed[i] : null;
            if (has != says)
            {
                throw new ContextIndexMismatchException((has, says) switch
                {
                    (null, _) => $"the index lists '{says!.Path}', which the tar does not hold",
                    (_, null) => $"the tar holds '{has.Path}', which the index does not list",
                    _ when has.Path != says.Path => $"entry {i + 1} is '{has.Path}' in the tar but '{says.Path}' in the index",
                    _ => $"'{has.Path}' is {Describe(has)} in the tar but {Describe(says)} in the index",
                });
            }
        }
    }

    private static string Describe(ContextEntry e) => e.Type switch
    {
        ContextEntryType.File => $"a file of {e.Size} bytes, mode {Convert.ToString(e.Mode, 8)}, sha256 {e.Sha256?[..12]}",
        ContextEntryType.Symlink => $"a symlink to '{e.LinkTarget}'",
        _ => $"a directory, mode {Convert.ToString(e.Mode, 8)}",
    };
}

/// <summary>
/// FARM1212: a submitted context index does not describe the context tar it came with, so its cache keys would not be
/// the tar's. Nothing is built or cached.
/// </summary>
public sealed class ContextIndexMismatchException(string detail)
    : FarmException(FarmErrorCodes.ContextIndexMismatch, $"The context index does not match the context tar: {detail}. Upload the tar and the index of one pack (farm build does both) and submit again; nothing was built or cached.")
{
    public string Detail { get; } = detail;
}
