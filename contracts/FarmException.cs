namespace Farm.Contracts;

/// <summary>
/// Base of every error Farm reports to a user. The message starts with a stable code
/// (<c>FARM1203: ...</c>) so scripts and issue reports can refer to it, and says what to do.
/// </summary>
/// <remarks>
/// Code ranges: FARM10xx Dockerfile syntax, FARM11xx variable expansion and .dockerignore,
/// FARM12xx build context and COPY/ADD, FARM13xx build graph and stages, FARM20xx OCI models,
/// FARM21xx layer tars, FARM22xx registries and blob stores, FARM30xx worker and sandbox,
/// FARM40xx coordinator, FARM50xx CLI.
/// </remarks>
public abstract class FarmException : Exception
{
    protected FarmException(string code, string message, Exception? innerException = null)
        : base($"{code}: {message}", innerException)
    {
        Code = code;
    }

    /// <summary>The stable code, e.g. <c>FARM1203</c>.</summary>
    public string Code { get; }
}
