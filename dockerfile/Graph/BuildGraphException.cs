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

/// <summary>
/// The build graph codes (FARM13xx) by their short names, for the graph builder. Each is an alias of the
/// <see cref="FarmErrorCodes"/> member of the same name, where every code is defined and documented.
/// </summary>
public static class BuildGraphErrorCodes
{
    /// <inheritdoc cref="FarmErrorCodes.UnknownTarget"/>
    public const string UnknownTarget = FarmErrorCodes.UnknownTarget;

    /// <inheritdoc cref="FarmErrorCodes.DuplicateStageName"/>
    public const string DuplicateStageName = FarmErrorCodes.DuplicateStageName;

    /// <inheritdoc cref="FarmErrorCodes.SelfReference"/>
    public const string SelfReference = FarmErrorCodes.SelfReference;

    /// <inheritdoc cref="FarmErrorCodes.InvalidStageIndex"/>
    public const string InvalidStageIndex = FarmErrorCodes.InvalidStageIndex;

    /// <inheritdoc cref="FarmErrorCodes.ForwardStageReference"/>
    public const string ForwardStageReference = FarmErrorCodes.ForwardStageReference;

    /// <inheritdoc cref="FarmErrorCodes.VariableInFrom"/>
    public const string VariableInFrom = FarmErrorCodes.VariableInFrom;

    /// <inheritdoc cref="FarmErrorCodes.EmptyBaseName"/>
    public const string EmptyBaseName = FarmErrorCodes.EmptyBaseName;

    /// <inheritdoc cref="FarmErrorCodes.InvalidPlatform"/>
    public const string InvalidPlatform = FarmErrorCodes.InvalidPlatform;

    /// <inheritdoc cref="FarmErrorCodes.InvalidPort"/>
    public const string InvalidPort = FarmErrorCodes.InvalidPort;

    /// <inheritdoc cref="FarmErrorCodes.EmptyVolume"/>
    public const string EmptyVolume = FarmErrorCodes.EmptyVolume;

    /// <inheritdoc cref="FarmErrorCodes.ExpansionFailed"/>
    public const string ExpansionFailed = FarmErrorCodes.ExpansionFailed;

    /// <inheritdoc cref="FarmErrorCodes.NoStage"/>
    public const string NoStage = FarmErrorCodes.NoStage;

    /// <inheritdoc cref="FarmErrorCodes.TooManyStages"/>
    public const string TooManyStages = FarmErrorCodes.TooManyStages;

    /// <inheritdoc cref="FarmErrorCodes.InvalidSourceDateEpoch"/>
    public const string InvalidSourceDateEpoch = FarmErrorCodes.InvalidSourceDateEpoch;

    /// <inheritdoc cref="FarmErrorCodes.UnusedBuildArgs"/>
    public const string UnusedBuildArgs = FarmErrorCodes.UnusedBuildArgs;

    /// <inheritdoc cref="FarmErrorCodes.OnbuildTriggerUnusable"/>
    public const string OnbuildTriggerUnusable = FarmErrorCodes.OnbuildTriggerUnusable;

    /// <inheritdoc cref="FarmErrorCodes.OnbuildNotApplied"/>
    public const string OnbuildNotApplied = FarmErrorCodes.OnbuildNotApplied;
}
