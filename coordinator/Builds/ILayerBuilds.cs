using Farm.Contracts;
using Farm.Coordinator.Grains;

namespace Farm.Coordinator.Builds;

/// <summary>
/// What the orchestrator needs of the farm to get a layer it could not find in the action cache: "build this layer,
/// or join the job that builds it already". In a farm it is the layer grains (<see cref="GrainLayerBuilds"/>); an
/// orchestrator's unit tests give it a fake.
/// </summary>
public interface ILayerBuilds
{
    /// <summary>
    /// The outcome of the job for <paramref name="key"/> (one job however many builds ask at once). Cancelling
    /// <paramref name="cancellationToken"/> withdraws this build's interest: a job no other build awaits is stopped.
    /// </summary>
    Task<LayerJobOutcome> BuildOrJoinAsync(string key, LayerJobRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// The local farm's daemon when it is not root: runc and overlayfs need root, so a step that must run fails at once
/// with what to do (FARM5011); a build whose every step is cached still completes.
/// </summary>
public sealed class RootlessLayerBuilds : ILayerBuilds
{
    public Task<LayerJobOutcome> BuildOrJoinAsync(string key, LayerJobRequest request, CancellationToken cancellationToken) =>
        throw new LocalFarmNeedsRootException();
}

/// <summary>FARM5011: the local farm must run a build step and its daemon is not root.</summary>
public sealed class LocalFarmNeedsRootException()
    : FarmException(FarmErrorCodes.LocalFarmNeedsRoot, "the local farm runs build steps with runc and overlayfs, which need root. Run farm build as root (sudo ./farm build ...), or build on a farm with --farm URL / FARM_HOST.");
