namespace Farm.Contracts;

/// <summary>
/// Base of every error Farm reports to a user. The message starts with a stable code
/// (<c>FARM1203: ...</c>) so scripts and issue reports can refer to it, and says what to do.
/// </summary>
/// <remarks>Every code, its range and its meaning are in <see cref="FarmErrorCodes"/>.</remarks>
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
