using System.IO.Compression;
using System.Text;
using Farm.Oci.Registry;
using StackExchange.Redis;

namespace Farm.Cli.Tests;

/// <summary>
/// The places a build leaves something, read as text so a test can search them for a secret: a pushed image's blobs,
/// every key of a Redis, every file under a directory (gzip blobs uncompressed), exported telemetry. Shared by the
/// searches for registry credentials (<see cref="TenantCredentialsTests"/>) and build secrets (<see cref="BuildSecretsTests"/>).
/// </summary>
internal static class LeakSearch
{
    /// <summary>Every blob of an image as text: manifest, config, and each layer's tar uncompressed.</summary>
    public static async Task<string> ImageTextAsync(RegistryClient client, PulledImage pulled)
    {
        var repository = pulled.Reference.Repository;
        var text = new StringBuilder(Encoding.UTF8.GetString(pulled.Raw.Content.Span));
        foreach (var blob in pulled.Manifest.Layers.Prepend(pulled.Manifest.Config))
        {
            using var content = new MemoryStream();
            await using (var stream = await client.OpenBlobAsync(repository, blob.Digest, blob.Size, CancellationToken.None))
            {
                await stream.CopyToAsync(content);
            }

            var bytes = content.ToArray();
            if (bytes is [0x1f, 0x8b, ..])
            {
                using var unzipped = new MemoryStream();
                await using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
                {
                    await gzip.CopyToAsync(unzipped);
                }

                bytes = unzipped.ToArray();
            }

            text.AppendLine(Encoding.Latin1.GetString(bytes));
        }

        return text.ToString();
    }

    /// <summary>Every key and value of every database of the Redis at <paramref name="configuration"/>, by type.</summary>
    public static async Task<string> DumpRedisAsync(string configuration)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(configuration + ",allowAdmin=true");
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var dump = new StringBuilder();
        for (var database = 0; database < server.DatabaseCount; database++)
        {
            if (await server.DatabaseSizeAsync(database) == 0)
            {
                continue;
            }

            var db = redis.GetDatabase(database);
            await foreach (var key in server.KeysAsync(database, "*", pageSize: 500))
            {
                dump.Append(database).Append(' ').AppendLine(key.ToString());
                switch (await db.KeyTypeAsync(key))
                {
                    case RedisType.String:
                        dump.AppendLine(Latin1(await db.StringGetAsync(key)));
                        break;
                    case RedisType.Hash:
                        foreach (var entry in await db.HashGetAllAsync(key))
                        {
                            dump.Append(Latin1(entry.Name)).Append(' ').AppendLine(Latin1(entry.Value));
                        }

                        break;
                    case RedisType.List:
                        dump.AppendJoin('\n', (await db.ListRangeAsync(key)).Select(Latin1)).AppendLine();
                        break;
                    case RedisType.Set:
                        dump.AppendJoin('\n', (await db.SetMembersAsync(key)).Select(Latin1)).AppendLine();
                        break;
                    case RedisType.SortedSet:
                        dump.AppendJoin('\n', (await db.SortedSetRangeByRankAsync(key)).Select(Latin1)).AppendLine();
                        break;
                    case RedisType.Stream:
                        foreach (var entry in await db.StreamRangeAsync(key))
                        {
                            dump.Append(entry.Id.ToString()).Append(' ').AppendJoin(' ', entry.Values.Select(v => Latin1(v.Name) + "=" + Latin1(v.Value))).AppendLine();
                        }

                        break;
                    default:
                        // A type this dump cannot read would make the search blind to it.
                        throw new InvalidOperationException($"Redis key {key} has a type the leak search does not read: {await db.KeyTypeAsync(key)}");
                }
            }
        }

        return dump.ToString();
    }

    public static string Latin1(RedisValue value) => value.IsNull ? string.Empty : Encoding.Latin1.GetString((byte[])value!);

    public static string Text(IEnumerable<byte[]> bodies) => string.Join("\n", bodies.Select(b => Encoding.Latin1.GetString(b)));

    /// <summary>Every file under <paramref name="directory"/> as text (Latin-1), gzip files uncompressed, each after its path.</summary>
    public static string FilesText(string directory)
    {
        var text = new StringBuilder();
        foreach (var file in Directory.EnumerateFiles(directory, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false }))
        {
            if (new FileInfo(file).LinkTarget is not null)
            {
                continue;
            }

            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (IOException)
            {
                // A socket or a file that went away while the search ran.
                continue;
            }

            if (bytes is [0x1f, 0x8b, ..])
            {
                using var unzipped = new MemoryStream();
                using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
                {
                    gzip.CopyTo(unzipped);
                }

                bytes = unzipped.ToArray();
            }

            text.Append(file).Append('\n').AppendLine(Encoding.Latin1.GetString(bytes));
        }

        return text.ToString();
    }

    /// <summary>The forms a secret may travel in: itself, and its base64 and base64url encodings.</summary>
    public static IReadOnlyList<string> Forms(string secret)
    {
        var base64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(secret)).TrimEnd('=');
        return [secret, base64, base64.Replace('+', '-').Replace('/', '_')];
    }
}
