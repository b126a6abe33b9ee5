using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Farm.Oci.Layers;

namespace Farm.Oci.Tests;

/// <summary>A scratch directory under /tmp (a real disk file system, so xattrs, devices and overlay mounts work).</summary>
internal sealed class ScratchDir : IDisposable
{
    public ScratchDir()
    {
        Path = System.IO.Path.Combine("/tmp", "farm-layer-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name)
    {
        var p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // a mount left by a failed test; the next run uses another name
        }
    }
}

internal static class LayerTestSupport
{
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {p.ExitCode}: {stderr}");
        }

        return stdout.Result;
    }

    public static void WriteFile(string path, string content, int mode = 0x1A4 /* 0644 */, long mtime = 1_600_000_000)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        Chmod(path, mode);
        SetMtime(path, mtime);
    }

    public static void SetMtime(string path, long seconds) =>
        Assert.Equal(0, Interop.UtimensAt(Interop.AtFdCwd, path, seconds, Interop.AtSymlinkNoFollow));

    public static void Chmod(string path, int mode) =>
        Assert.Equal(0, Interop.FchmodAt(Interop.AtFdCwd, path, (uint)mode, 0));

    public static void Chown(string path, uint uid, uint gid) =>
        Assert.Equal(0, Interop.FchownAt(Interop.AtFdCwd, path, uid, gid, Interop.AtSymlinkNoFollow));

    public static async Task<(LayerResult Result, byte[] Bytes)> WriteLayerAsync(
        string dir, LayerWriteOptions options, LayerSourceKind kind = LayerSourceKind.Directory)
    {
        using var ms = new MemoryStream();
        var result = await LayerWriter.WriteAsync(dir, kind, ms, options, CancellationToken.None);
        return (result, ms.ToArray());
    }

    /// <summary>Every entry below root with type, mode, owner, mtime, size, content hash, link target, device, xattrs, hardlink group.</summary>
    public static SortedDictionary<string, string> Snapshot(string root, string? exclude = null)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var inodes = new Dictionary<ulong, string>();
        void Walk(string dir, string rel)
        {
            foreach (var full in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
            {
                if (exclude is not null && full == exclude)
                {
                    continue;
                }

                var name = rel + Path.GetFileName(full);
                Assert.Equal(0, Interop.Lstat(Interop.AtFdCwd, full, out var st));
                var sb = new StringBuilder();
                sb.Append($"type={st.Type:x} mode={st.Permissions:x} uid={st.Uid} gid={st.Gid}");
                if (st.Type != Interop.SIfDir)
                {
                    sb.Append($" mtime={st.MtimeSeconds}");
                }

                if (st.Type == Interop.SIfReg)
                {
                    sb.Append($" size={st.Size} sha={Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(full)))[..16]}");
                    if (st.Nlink > 1)
                    {
                        sb.Append($" link-group={(inodes.TryGetValue(st.Inode, out var first) ? first : inodes[st.Inode] = name)}");
                    }
                }

                if (st.Type == Interop.SIfLnk)
                {
                    sb.Append($" target={new FileInfo(full).LinkTarget}");
                }

                if (st.Type is Interop.SIfChr or Interop.SIfBlk)
                {
                    sb.Append($" dev={st.RdevMajor},{st.RdevMinor}");
                }

                foreach (var (k, v) in Interop.ListXattrs(full))
                {
                    sb.Append($" xattr:{k}={Convert.ToHexString(v)}");
                }

                result[name] = sb.ToString();
                if (st.Type == Interop.SIfDir)
                {
                    Walk(full, name + "/");
                }
            }
        }

        Walk(root, string.Empty);
        return result;
    }

    public static string Describe(SortedDictionary<string, string> snapshot) =>
        string.Join('\n', snapshot.Select(kv => $"{kv.Key}: {kv.Value}"));

    /// <summary>Names of a tar's entries as System.Formats.Tar (an independent reader) sees them.</summary>
    public static List<string> TarNames(byte[] layer)
    {
        using var raw = LayerReader.OpenDecompressed(new MemoryStream(layer), null);
        using var reader = new System.Formats.Tar.TarReader(raw);
        var names = new List<string>();
        while (reader.GetNextEntry() is { } e)
        {
            names.Add(e.Name);
        }

        return names;
    }

    /// <summary>
    /// A minimal OCI image layout (oci-layout, index.json, blobs/sha256) with the given layers, for umoci. Test-only:
    /// the real layout store is Farm.Oci's blob store.
    /// </summary>
    public static void WriteOciLayout(string layoutDir, string tag, IReadOnlyList<(LayerResult Result, byte[] Bytes)> layers)
    {
        var blobs = Path.Combine(layoutDir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        File.WriteAllText(Path.Combine(layoutDir, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        string Put(byte[] content)
        {
            var hex = Convert.ToHexStringLower(SHA256.HashData(content));
            File.WriteAllBytes(Path.Combine(blobs, hex), content);
            return $"sha256:{hex}";
        }

        foreach (var (_, bytes) in layers)
        {
            Put(bytes);
        }

        var diffIds = string.Join(',', layers.Select(l => $"\"{l.Result.DiffId}\""));
        var config = Encoding.UTF8.GetBytes(
            $$$"""{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[{{{diffIds}}}]}}""");
        var layerDescs = string.Join(',', layers.Select(l =>
            $$$"""{"mediaType":"{{{l.Result.Descriptor.MediaType}}}","digest":"{{{l.Result.Descriptor.Digest}}}","size":{{{l.Result.Descriptor.Size}}}}"""));
        var manifest = Encoding.UTF8.GetBytes(
            $$$"""{"schemaVersion":2,"mediaType":"{{{MediaTypes.OciManifest}}}","config":{"mediaType":"{{{MediaTypes.OciConfig}}}","digest":"{{{Put(config)}}}","size":{{{config.Length}}}},"layers":[{{{layerDescs}}}]}""");
        File.WriteAllText(
            Path.Combine(layoutDir, "index.json"),
            $$$"""{"schemaVersion":2,"manifests":[{"mediaType":"{{{MediaTypes.OciManifest}}}","digest":"{{{Put(manifest)}}}","size":{{{manifest.Length}}},"annotations":{"org.opencontainers.image.ref.name":"{{{tag}}}"}}]}""");
    }
}
