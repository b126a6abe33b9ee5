using System.Text;
using Farm.Contracts;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;
using Farm.Dockerfile.Planning;

namespace Farm.Fuzzing;

/// <summary>
/// The Dockerfile as a build reads it: the text (UTF-8, invalid bytes replaced, as a JSON submission could carry them)
/// parsed, dumped, typed, planned into a <see cref="BuildGraph"/> (with no options, and with a target stage and build
/// args taken from the text) and keyed by <see cref="CacheKeyPlanner"/> against a small context.
/// </summary>
public sealed class DockerfileFuzzTarget : IFuzzTarget
{
    private static readonly ContextIndex Context = new(
    [
        new ContextEntry("a", ContextEntryType.File, 420, 1, new string('0', 64), null),
        new ContextEntry("dir", ContextEntryType.Directory, 493, 0, null, null),
        new ContextEntry("dir/b", ContextEntryType.File, 420, 1, new string('1', 64), null),
        new ContextEntry("link", ContextEntryType.Symlink, 511, 0, null, "dir"),
    ]);

    private readonly IReadOnlyList<string> _texts;

    public DockerfileFuzzTarget()
    {
        Seeds = FuzzCorpus.Dockerfiles;
        _texts = [.. Seeds.Select(b => Encoding.UTF8.GetString(b))];
    }

    public string Name => "dockerfile";

    public string Extension => "Dockerfile";

    public IReadOnlyList<byte[]> Seeds { get; }

    public byte[] Mutate(byte[] input, Random random, FuzzScale scale)
    {
        ArgumentNullException.ThrowIfNull(random);
        // Some flips stay at the byte level, so invalid UTF-8 reaches the decoder as it is.
        return random.Next(8) == 0
            ? TextMutator.FlipBytes(input, random)
            : Encoding.UTF8.GetBytes(TextMutator.Mutate(Encoding.UTF8.GetString(input), random, _texts, scale));
    }

    public string Run(byte[] input)
    {
        try
        {
            Plan(Encoding.UTF8.GetString(input), "Dockerfile", new Dictionary<string, string>(StringComparer.Ordinal), null);
            return "ok";
        }
        catch (FarmException e)
        {
            return e.Code;
        }
    }

    /// <summary>Parses and plans <paramref name="text"/> as the coordinator does, then again for a named stage.</summary>
    public static void Plan(string text, string fileName, IReadOnlyDictionary<string, string> buildArgs, string? target)
    {
        var ast = DockerfileParser.Parse(text, fileName);
        _ = AstDumper.Dump(ast);
        _ = DockerfileInstructions.Convert(ast);
        var graph = BuildGraph.Create(ast, new BuildGraphOptions { BuildArgs = buildArgs, Target = target });
        _ = CacheKeyPlanner.Compute(graph, Context, reference => reference);
        if (target is null && FirstStageName(ast) is { } stage)
        {
            var args = ast.Instructions
                .Where(i => i.Keyword.Equals("ARG", StringComparison.OrdinalIgnoreCase))
                .SelectMany(i => i.Arguments)
                .Select(a => a.Split('=')[0])
                .Where(a => a.Length > 0)
                .Distinct(StringComparer.Ordinal)
                .ToDictionary(a => a, a => "1", StringComparer.Ordinal);
            var targeted = BuildGraph.Create(ast, new BuildGraphOptions { BuildArgs = args, Target = stage, Platform = "linux/arm64/v8" });
            _ = CacheKeyPlanner.Compute(targeted, Context, reference => "sha256:" + new string('a', 64));
        }
    }

    private static string? FirstStageName(DockerfileAst ast) =>
        ast.Instructions
            .Where(i => i.Keyword.Equals("FROM", StringComparison.OrdinalIgnoreCase) && i.Arguments.Count == 3)
            .Select(i => i.Arguments[2])
            .FirstOrDefault();
}
