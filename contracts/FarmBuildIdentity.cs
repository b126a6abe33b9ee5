using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Farm.Contracts;

/// <summary>
/// Which build of the farm's assemblies a directory holds: a hash of the name, size and modification time of
/// <c>farm-coordinator.dll</c> and every <c>Farm.*.dll</c> in it. The local farm daemon reports its own directory's;
/// the CLI computes the one of the daemon it would start, and restarts a daemon of another build. Stats only, so the
/// CLI's start-up pays microseconds for it.
/// </summary>
public static class FarmBuildIdentity
{
    public static string Of(string directory)
    {
        var text = new StringBuilder();
        foreach (var file in Directory.EnumerateFiles(directory, "*.dll")
            .Where(f => Path.GetFileName(f) is var name && (name == "farm-coordinator.dll" || name.StartsWith("Farm.", StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(file);
            text.Append(CultureInfo.InvariantCulture, $"{info.Name} {info.Length} {info.LastWriteTimeUtc.Ticks}\n");
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16];
    }
}
