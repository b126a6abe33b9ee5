using Farm.Oci;
using Farm.Oci.Layers;

// Usage: LayerBench <dir> <gzip|zstd|none> <output-file>
// Packs <dir> with Farm's layer writer, as a worker would, and prints the result on stderr.
if (args.Length != 3)
{
    await Console.Error.WriteLineAsync("usage: LayerBench <dir> <gzip|zstd|none> <output-file>");
    return 2;
}

var compression = args[1] switch
{
    "gzip" => LayerCompression.Gzip,
    "zstd" => LayerCompression.Zstd,
    "none" => LayerCompression.None,
    _ => throw new ArgumentException($"unknown compression '{args[1]}'"),
};

await using var output = new FileStream(args[2], FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
var result = await LayerWriter.WriteDirectoryAsync(args[0], output, new LayerWriteOptions { Compression = compression }, CancellationToken.None);
await Console.Error.WriteLineAsync(
    $"{result.Descriptor.Digest} size={result.Descriptor.Size} uncompressed={result.UncompressedSize} entries={result.EntryCount}");
return 0;
