namespace Farm.Testing;

/// <summary>Finds the repository root and the conformance corpora under tests/conformance, which are used in place.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> Root = new(FindRoot);

    /// <summary>The directory that holds Farm.sln.</summary>
    public static string RepoRoot => Root.Value;

    /// <summary>tests/conformance in the repository (see its README.md for the corpora and their licences).</summary>
    public static string Conformance
    {
        get
        {
            var dir = Path.Combine(RepoRoot, "tests", "conformance");
            if (!Directory.Exists(dir))
            {
                throw new InvalidOperationException(
                    $"The conformance corpora were expected at {dir} (tests/conformance in the repository); the checkout is incomplete.");
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
