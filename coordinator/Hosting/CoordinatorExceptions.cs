using Farm.Contracts;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// Codes of the failures a layer grain reports itself (the worker's own codes pass through unchanged): aliases of
/// the <see cref="FarmErrorCodes"/> members of the same name.
/// </summary>
public static class CoordinatorErrorCodes
{
    /// <inheritdoc cref="FarmErrorCodes.AttemptsExhausted"/>
    public const string AttemptsExhausted = FarmErrorCodes.AttemptsExhausted;

    /// <inheritdoc cref="FarmErrorCodes.JobTimedOut"/>
    public const string JobTimedOut = FarmErrorCodes.JobTimedOut;

    /// <inheritdoc cref="FarmErrorCodes.DispatchFailed"/>
    public const string DispatchFailed = FarmErrorCodes.DispatchFailed;
}
