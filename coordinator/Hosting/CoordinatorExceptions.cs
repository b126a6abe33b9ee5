using Farm.Contracts;

namespace Farm.Coordinator.Hosting;

/// <summary>FARM4010: the coordinator's configuration is invalid; the message names the setting.</summary>
public sealed class CoordinatorConfigurationException(string message)
    : FarmException(FarmErrorCodes.CoordinatorConfiguration, message);

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
