using Farm.Contracts;

namespace Farm.Dockerfile.Parsing;

/// <summary>
/// A Dockerfile that cannot be read: the message reads <c>FARM10xx: Dockerfile:12:5: what is wrong; what to do</c>.
/// Codes are listed in <see cref="DockerfileErrorCodes"/>.
/// </summary>
public sealed class DockerfileSyntaxException : FarmException
{
    public DockerfileSyntaxException(string code, string fileName, int line, int column, string problem, Exception? innerException = null)
        : base(code, $"{fileName}:{line}:{column}: {problem}", innerException)
    {
        FileName = fileName;
        Line = line;
        Column = column;
        Problem = problem;
    }

    /// <summary>The file name given to the parser (usually <c>Dockerfile</c>).</summary>
    public string FileName { get; }

    /// <summary>1-based line of the problem.</summary>
    public int Line { get; }

    /// <summary>1-based column of the problem.</summary>
    public int Column { get; }

    /// <summary>The message without code and location.</summary>
    public string Problem { get; }
}

/// <summary>
/// The Dockerfile syntax codes (FARM10xx) by their short names, for the parser. Each is an alias of the
/// <see cref="FarmErrorCodes"/> member of the same name, where every code is defined and documented.
/// </summary>
public static class DockerfileErrorCodes
{
    /// <inheritdoc cref="FarmErrorCodes.NoInstructions"/>
    public const string NoInstructions = FarmErrorCodes.NoInstructions;

    /// <inheritdoc cref="FarmErrorCodes.InvalidDirective"/>
    public const string InvalidDirective = FarmErrorCodes.InvalidDirective;

    /// <inheritdoc cref="FarmErrorCodes.DuplicateDirective"/>
    public const string DuplicateDirective = FarmErrorCodes.DuplicateDirective;

    /// <inheritdoc cref="FarmErrorCodes.JsonNotStringArray"/>
    public const string JsonNotStringArray = FarmErrorCodes.JsonNotStringArray;

    /// <inheritdoc cref="FarmErrorCodes.MissingValue"/>
    public const string MissingValue = FarmErrorCodes.MissingValue;

    /// <inheritdoc cref="FarmErrorCodes.MissingEquals"/>
    public const string MissingEquals = FarmErrorCodes.MissingEquals;

    /// <inheritdoc cref="FarmErrorCodes.UnterminatedHeredoc"/>
    public const string UnterminatedHeredoc = FarmErrorCodes.UnterminatedHeredoc;

    /// <inheritdoc cref="FarmErrorCodes.UnknownInstruction"/>
    public const string UnknownInstruction = FarmErrorCodes.UnknownInstruction;

    /// <inheritdoc cref="FarmErrorCodes.UnknownFlag"/>
    public const string UnknownFlag = FarmErrorCodes.UnknownFlag;

    /// <inheritdoc cref="FarmErrorCodes.InvalidFlag"/>
    public const string InvalidFlag = FarmErrorCodes.InvalidFlag;

    /// <inheritdoc cref="FarmErrorCodes.InvalidArguments"/>
    public const string InvalidArguments = FarmErrorCodes.InvalidArguments;

    /// <inheritdoc cref="FarmErrorCodes.JsonRequired"/>
    public const string JsonRequired = FarmErrorCodes.JsonRequired;

    /// <inheritdoc cref="FarmErrorCodes.InvalidOnbuild"/>
    public const string InvalidOnbuild = FarmErrorCodes.InvalidOnbuild;

    /// <inheritdoc cref="FarmErrorCodes.InvalidHealthcheck"/>
    public const string InvalidHealthcheck = FarmErrorCodes.InvalidHealthcheck;

    /// <inheritdoc cref="FarmErrorCodes.InvalidStageName"/>
    public const string InvalidStageName = FarmErrorCodes.InvalidStageName;
}
