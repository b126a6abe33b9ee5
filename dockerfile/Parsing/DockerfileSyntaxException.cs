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

/// <summary>Stable codes of Dockerfile syntax errors (FARM1000–FARM1099).</summary>
public static class DockerfileErrorCodes
{
    /// <summary>The file has no instruction (empty, blank or comments only).</summary>
    public const string NoInstructions = "FARM1001";

    /// <summary>A parser directive has a value the parser does not accept (e.g. <c># escape=x</c>).</summary>
    public const string InvalidDirective = "FARM1002";

    /// <summary>The same parser directive appears twice.</summary>
    public const string DuplicateDirective = "FARM1003";

    /// <summary>A JSON array holds something other than strings.</summary>
    public const string JsonNotStringArray = "FARM1004";

    /// <summary>ENV or LABEL names a key without a value.</summary>
    public const string MissingValue = "FARM1005";

    /// <summary>ENV or LABEL in <c>key=value</c> form has a word without <c>=</c>.</summary>
    public const string MissingEquals = "FARM1006";

    /// <summary>A heredoc body never reaches its terminator line.</summary>
    public const string UnterminatedHeredoc = "FARM1007";

    /// <summary>The instruction keyword is not a Dockerfile instruction.</summary>
    public const string UnknownInstruction = "FARM1010";

    /// <summary>A <c>--flag</c> the instruction does not take.</summary>
    public const string UnknownFlag = "FARM1011";

    /// <summary>A flag is missing its value, has a bad value, or is repeated.</summary>
    public const string InvalidFlag = "FARM1012";

    /// <summary>Too few or too many arguments, or arguments of the wrong shape.</summary>
    public const string InvalidArguments = "FARM1013";

    /// <summary>An instruction that requires JSON (exec) form got something else.</summary>
    public const string JsonRequired = "FARM1014";

    /// <summary>ONBUILD wraps an instruction it may not trigger.</summary>
    public const string InvalidOnbuild = "FARM1015";

    /// <summary>A HEALTHCHECK duration or retry count is not valid.</summary>
    public const string InvalidHealthcheck = "FARM1016";

    /// <summary>A stage name after FROM … AS is not valid.</summary>
    public const string InvalidStageName = "FARM1017";
}
