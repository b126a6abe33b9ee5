using System.Diagnostics;
using System.Formats.Tar;
using System.Text;

namespace Farm.Testing;

/// <summary>A small base image made offline from busybox-static, as a rootfs tar for <c>farm import</c>.</summary>
public static class BusyboxRootfs
{
    /// <summary>
    /// Writes /bin/busybox with a symlink per applet, plus <paramref name="directories"/> (0755; /tmp gets 1777) and
    /// <paramref name="files"/> (0644), to the tar <paramref name="path"/>; returns the path.
    /// </summary>
    public static string Write(string path, IEnumerable<string>? directories = null, IReadOnlyDictionary<string, string>? files = null)
    {
        using var file = File.Create(path);
        using var tar = new TarWriter(file, TarEntryFormat.Pax);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "bin/") { Mode = (UnixFileMode)0x1ED });
        foreach (var dir in directories ?? [])
        {
            var mode = dir == "tmp" ? (UnixFileMode)0x3FF | UnixFileMode.StickyBit : (UnixFileMode)0x1ED;
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir + "/") { Mode = mode });
        }

        foreach (var (name, content) in files ?? new Dictionary<string, string>())
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
            {
                Mode = (UnixFileMode)0x1A4,
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            });
        }

        tar.WriteEntry("/bin/busybox", "bin/busybox");
        using var list = Process.Start(new ProcessStartInfo("/bin/busybox", "--list") { RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("/bin/busybox is missing: run infra/install.sh (apt-get install -y busybox-static).");
        foreach (var applet in list.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(a => a != "busybox"))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, $"bin/{applet}") { LinkName = "busybox" });
        }

        list.WaitForExit();
        return path;
    }
}
