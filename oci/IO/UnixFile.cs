using Farm.Oci.Layers;

namespace Farm.Oci.IO;

/// <summary>File metadata .NET does not expose (type, owner, inode), for code outside the layer reader and writer.</summary>
public static class UnixFile
{
    /// <summary>lstat of <paramref name="path"/>; null when it does not exist.</summary>
    public static FileStat? Lstat(string path)
    {
        var errno = Interop.Lstat(Interop.AtFdCwd, path, out var stat);
        return errno switch
        {
            0 => stat,
            Interop.ENOENT or Interop.ENOTDIR => null,
            _ => throw new IOException($"Cannot stat '{path}': {Interop.ErrorText(errno)}"),
        };
    }
}
