namespace Farm.Testing;

/// <summary>Finds the repository root and the shared conformance corpora, which are used in place.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> Root = new(FindRoot);

    /// <summary>The directory that holds Farm.sln.</summary>
    public static string RepoRoot => Root.Value;

    /// <summary>../shared/conformance beside the repository.</summary>
    public static string Conformance
    {
        get
        {
            var dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "conformance"));
            if (!Directory.Exists(dir))
            {
                throw new InvalidOperationException(
                    $"The conformance corpora were expected at {dir} (../shared/conformance beside the repository). Check out shared/ next to the repository.");
            }

            return dir;
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Farm.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Farm.sln above {AppContext.BaseDirectory}; run the tests from the repository.");
    }
}
