using Farm.Contracts;
using MassTransit;

namespace Farm.Worker.RunMounts;

/// <summary>
/// Where a worker asks about the farm-wide side of its cache mounts: the <c>locked</c> lease and the latest snapshot
/// (docs/architecture.md, "Cache mounts across the farm"). A worker process asks the coordinators over the bus
/// (<see cref="BusCacheMountCoordinator"/>); the local farm's one worker has no other worker to share with and uses none.
/// </summary>
public interface ICacheMountCoordinator
{
    /// <summary>Asks for the cache; see <see cref="AcquireCacheMount"/>.</summary>
    Task<CacheMountGranted> AcquireAsync(AcquireCacheMount request, CancellationToken cancellationToken);

    /// <summary>Extends a <c>locked</c> lease; see <see cref="RenewCacheMount"/>.</summary>
    Task<CacheMountGranted> RenewAsync(RenewCacheMount request, CancellationToken cancellationToken);

    /// <summary>Ends a use, publishing its snapshot; see <see cref="ReleaseCacheMount"/>.</summary>
    Task<CacheMountGranted> ReleaseAsync(ReleaseCacheMount request, CancellationToken cancellationToken);

    /// <summary>Publishes the snapshot of a generation a release made; see <see cref="PublishCacheSnapshot"/>.</summary>
    Task<CacheMountGranted> PublishAsync(PublishCacheSnapshot request, CancellationToken cancellationToken);
}

/// <summary>
/// Asks the coordinators over MassTransit request/response (RabbitMQ in a cluster): the requests go to the queue the
/// coordinators share, any of them answers from the cache's grain.
/// </summary>
public sealed class BusCacheMountCoordinator(IBus bus) : ICacheMountCoordinator
{
    /// <summary>How long one request waits for an answer before it counts as failed (the caller tries again).</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(20);

    public Task<CacheMountGranted> AcquireAsync(AcquireCacheMount request, CancellationToken cancellationToken) =>
        AskAsync(request, cancellationToken);

    public Task<CacheMountGranted> RenewAsync(RenewCacheMount request, CancellationToken cancellationToken) =>
        AskAsync(request, cancellationToken);

    public Task<CacheMountGranted> ReleaseAsync(ReleaseCacheMount request, CancellationToken cancellationToken) =>
        AskAsync(request, cancellationToken);

    public Task<CacheMountGranted> PublishAsync(PublishCacheSnapshot request, CancellationToken cancellationToken) =>
        AskAsync(request, cancellationToken);

    private async Task<CacheMountGranted> AskAsync<T>(T request, CancellationToken cancellationToken)
        where T : class
    {
        var client = bus.CreateRequestClient<T>(RequestTimeout);
        var response = await client.GetResponse<CacheMountGranted>(request, cancellationToken).ConfigureAwait(false);
        return response.Message;
    }
}

/// <summary>FARM3140: the coordinators did not answer about a farm-wide cache mount; the step did not run.</summary>
public sealed class CacheMountCoordinationException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.CacheMountCoordination, message, inner);
