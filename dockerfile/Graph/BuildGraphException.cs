using Farm.Contracts;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Graph;

/// <summary>
/// A Dockerfile whose stages do not form a valid build graph: the message reads
/// <c>FARM13xx: Dockerfile:12:1: what is wrong; what to do</c> (no location when the problem is
/// in the build options, e.g. an unknown <c>--target</c>). Codes are in <see cref="BuildGraphErrorCodes"/>.
/// </summary>
public sealed class BuildGraphException : FarmException
{
    public BuildGraphException(string code, string fileName, SourceLocation location, string problem, Exception? innerException = null)
        : base(code, $"{fileName}:{location.StartLine}:{location.StartColumn}: {problem}", innerException)
    {
        FileName = fileName;
        Line = location.StartLine;
        Column = location.StartColumn;
        Problem = problem;
    }

    public BuildGraphException(string code, string problem, Exception? innerException = null)
        : base(code, problem, innerException)
    {
        Problem = problem;
    }

    /// <summary>The Dockerfile name; null when the problem is not at a place in the file.</summary>
    public string? FileName { get; }

    /// <summary>1-based line, or 0 without a location.</summary>
    public int Line { get; }

    /// <summary>1-based column, or 0 without a location.</summary>
    public int Column { get; }

    /// <summary>The message without code and location.</summary>
    public string Problem { get; }
}

/// <summary>Stable codes of build graph errors and warnings (FARM1300–FARM1399).</summary>
public static class BuildGraphErrorCodes
{
    /// <summary><c>--target</c> names no stage.</summary>
    public const string UnknownTarget = "FARM1301";

    /// <summary>Two stages have the same name (compared case-insensitively).</summary>
    public const string DuplicateStageName = "FARM1302";

    /// <summary><c>COPY --from</c> names the stage it is in.</summary>
    public const string SelfReference = "FARM1303";

    /// <summary><c>COPY --from=N</c> with N not the index of an earlier stage.</summary>
    public const string InvalidStageIndex = "FARM1304";

    /// <summary><c>COPY --from=name</c> names a stage defined later in the file.</summary>
    public const string ForwardStageReference = "FARM1305";

    /// <summary><c>COPY --from</c> holds a variable; BuildKit does not expand it.</summary>
    public const string VariableInFrom = "FARM1306";

    /// <summary>The image of a FROM expands to nothing.</summary>
    public const string EmptyBaseName = "FARM1307";

    /// <summary>A <c>--platform</c> value that is not <c>os/arch[/variant]</c>.</summary>
    public const string InvalidPlatform = "FARM1308";

    /// <summary>An EXPOSE port that is not <c>port[/proto]</c> or <c>start-end[/proto]</c>.</summary>
    public const string InvalidPort = "FARM1309";

    /// <summary>A VOLUME path expands to an empty string.</summary>
    public const string EmptyVolume = "FARM1310";

    /// <summary>A word could not be expanded (bad substitution, <c>${X?}</c> on an unset X…).</summary>
    public const string ExpansionFailed = "FARM1311";

    /// <summary>The file has no FROM, or an instruction other than ARG comes before the first FROM.</summary>
    public const string NoStage = "FARM1312";

    /// <summary>Warning: build args that no instruction of the build declared.</summary>
    public const string UnusedBuildArgs = "FARM1390";

    /// <summary>Warning: ONBUILD triggers of a base stage or image were recorded but not applied.</summary>
    public const string OnbuildNotApplied = "FARM1391";
}
