namespace Farm.Testing;

/// <summary>Mounts below a directory, so fixtures can leave nothing mounted even when a test failed half-way.</summary>
public static class Mounts
{
    public static List<string> Under(string path) =>
        File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' ')[4])
            .Where(m => m == path || m.StartsWith(path + "/", StringComparison.Ordinal))
            .ToList();
}
