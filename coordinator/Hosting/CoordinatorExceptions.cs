using Farm.Contracts;

namespace Farm.Coordinator.Hosting;

/// <summary>FARM4010: the coordinator's configuration is invalid; the message names the setting.</summary>
public sealed class CoordinatorConfigurationException(string message)
    : FarmException("FARM4010", message);

/// <summary>
/// Codes of the failures a layer grain reports itself (the worker's own codes pass through unchanged).
/// </summary>
public static class CoordinatorErrorCodes
{
    /// <summary>Every attempt failed with a retryable (store or worker) fault.</summary>
    public const string AttemptsExhausted = "FARM4002";

    /// <summary>No result arrived within the job timeout.</summary>
    public const string JobTimedOut = "FARM4003";

    /// <summary>The job could not be published to the workers' queue.</summary>
    public const string DispatchFailed = "FARM4004";
}
