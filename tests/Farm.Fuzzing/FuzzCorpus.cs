using Farm.Testing;

namespace Farm.Fuzzing;

/// <summary>The seed corpora: BuildKit's Dockerfile parser cases (tests/conformance) and the examples' Dockerfiles.</summary>
public static class FuzzCorpus
{
    private static readonly Lazy<IReadOnlyList<byte[]>> DockerfileBytes = new(LoadDockerfiles);

    /// <summary>Every Dockerfile of the parser corpus (positive, negative, line-info) and of examples/, byte-exact, in path order.</summary>
    public static IReadOnlyList<byte[]> Dockerfiles => DockerfileBytes.Value;

    private static List<byte[]> LoadDockerfiles()
    {
        var parser = Path.Combine(RepoPaths.Conformance, "buildkit-parser");
        var examples = Path.Combine(RepoPaths.RepoRoot, "examples");
        var files = new[] { "positive", "negative", "line-info" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(parser, d), "Dockerfile", SearchOption.AllDirectories))
            .Concat(Directory.EnumerateFiles(examples, "Dockerfile*", SearchOption.AllDirectories))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count < 10)
        {
            throw new InvalidOperationException($"Expected the parser corpus under {parser}; found {files.Count} Dockerfiles. The checkout is incomplete.");
        }

        return [.. files.Select(File.ReadAllBytes)];
    }
}
