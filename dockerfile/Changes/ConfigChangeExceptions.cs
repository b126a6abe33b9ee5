using Farm.Contracts;

namespace Farm.Dockerfile.Changes;

/// <summary>FARM3107: a <c>-c</c> change of <c>farm import</c> or <c>farm commit</c> does not parse or is not one a change can carry.</summary>
public sealed class InvalidConfigChangeException(string change, string reason, Exception? innerException = null)
    : FarmException(FarmErrorCodes.InvalidConfigChange, $"cannot apply change '{change}': {reason}. Supported: {string.Join(", ", ConfigChanges.Supported)}.", innerException)
{
    /// <summary>The change as given.</summary>
    public string Change { get; } = change;
}
