using Farm.Contracts;
using Farm.Coordinator.Grains;
using Farm.Coordinator.Hosting;
using Farm.Worker.RunMounts;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Answers the workers' requests about cache mounts (acquire, renew, release) from the cache mount's grain, whose key
/// is the tenant and id hashed as the workers name their directories (<see cref="CacheMounts.Key"/>): a tenant's id
/// and another tenant's same id are two grains, so tenants never see each other's caches. Coordinators compete on one
/// queue; any may answer, Orleans routes to the grain. With auth on, only the farm's own RabbitMQ users are answered
/// (a tenant able to publish here could otherwise take another's lock or point its snapshot at a blob of its own).
/// </summary>
public sealed partial class CacheMountConsumer(
    IGrainFactory grains,
    JobResultSenders senders,
    IOptions<CoordinatorOptions> options,
    ILogger<CacheMountConsumer> logger)
    : IConsumer<AcquireCacheMount>, IConsumer<RenewCacheMount>, IConsumer<ReleaseCacheMount>, IConsumer<PublishCacheSnapshot>
{
    /// <summary>The queue the coordinators share for cache mount requests.</summary>
    public const string QueueName = "farm-coordinator-cache-mounts";

    public async Task Consume(ConsumeContext<AcquireCacheMount> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Message;
        Believe(context, request.Tenant, request.Id);
        var key = CacheMounts.Key(request.Tenant, request.Id);
        var granted = await grains.GetGrain<ICacheMountGrain>(key).AcquireAsync(request).ConfigureAwait(false);
        if (granted.Granted && granted.Latest is { } latest)
        {
            await UsedAsync(key, latest).ConfigureAwait(false);
        }

        await context.RespondAsync(granted).ConfigureAwait(false);
    }

    public async Task Consume(ConsumeContext<RenewCacheMount> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Message;
        Believe(context, request.Tenant, request.Id);
        var granted = await grains.GetGrain<ICacheMountGrain>(CacheMounts.Key(request.Tenant, request.Id)).RenewAsync(request).ConfigureAwait(false);
        await context.RespondAsync(granted).ConfigureAwait(false);
    }

    public async Task Consume(ConsumeContext<ReleaseCacheMount> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Message;
        Believe(context, request.Tenant, request.Id);
        var key = CacheMounts.Key(request.Tenant, request.Id);
        var granted = await grains.GetGrain<ICacheMountGrain>(key).ReleaseAsync(request).ConfigureAwait(false);
        await PublishedAsync(key, granted, request.Snapshot).ConfigureAwait(false);
        await context.RespondAsync(granted).ConfigureAwait(false);
    }

    public async Task Consume(ConsumeContext<PublishCacheSnapshot> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Message;
        Believe(context, request.Tenant, request.Id);
        var key = CacheMounts.Key(request.Tenant, request.Id);
        var granted = await grains.GetGrain<ICacheMountGrain>(key).PublishAsync(request).ConfigureAwait(false);
        await PublishedAsync(key, granted, request.Snapshot).ConfigureAwait(false);
        await context.RespondAsync(granted).ConfigureAwait(false);
    }

    /// <summary>When the grain took <paramref name="snapshot"/> as the cache's latest: logs it and counts it in the LRU index.</summary>
    private async Task PublishedAsync(string key, CacheMountGranted granted, CacheSnapshot? snapshot)
    {
        if (granted.Granted && snapshot is not null)
        {
            LogPublished(logger, key, snapshot.Worker, snapshot.Digest, snapshot.Size);
            await UsedAsync(key, snapshot).ConfigureAwait(false);
        }
    }

    /// <summary>Marks the snapshot used and makes the grains of the snapshots evicted for it forget theirs.</summary>
    private async Task UsedAsync(string key, CacheSnapshot snapshot)
    {
        var evicted = await grains.GetGrain<ICacheMountIndexGrain>(0).UsedAsync(key, snapshot.Digest, ChainSize(snapshot), options.Value.CacheMountSnapshotBytes).ConfigureAwait(false);
        foreach (var eviction in evicted)
        {
            LogEvicted(logger, eviction.Key, eviction.Digest, options.Value.CacheMountSnapshotBytes);
            await grains.GetGrain<ICacheMountGrain>(eviction.Key).ForgetSnapshotAsync(eviction.Digest).ConfigureAwait(false);
        }
    }

    /// <summary>Bytes of the snapshot's blob and of its parents': a delta keeps its whole chain in the store.</summary>
    private static long ChainSize(CacheSnapshot snapshot)
    {
        long size = 0;
        for (var s = snapshot; s is not null; s = s.Parent)
        {
            size += s.Size;
        }

        return size;
    }

    private void Believe(ConsumeContext context, string? tenant, string id)
    {
        var user = JobResultSenders.UserOf(context);
        if (!senders.Accepts(user))
        {
            var refused = new CacheMountRequestNotAuthorizedException(tenant, id, string.IsNullOrEmpty(user) ? "the message has no user_id property" : $"the AMQP user '{user}' is not one of the farm's");
            LogRefused(logger, refused.Message);
            throw refused;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache mount {Key}: snapshot {Digest} ({Size} bytes) from {Worker} is the latest")]
    private static partial void LogPublished(ILogger logger, string key, string worker, string digest, long size);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache mount {Key}: snapshot {Digest} evicted, least recently used, to keep the snapshots within {Budget} bytes")]
    private static partial void LogEvicted(ILogger logger, string key, string digest, long budget);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache mount request refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string reason);
}

/// <summary>FARM4330: a cache mount request came from a RabbitMQ user that is not one of the farm's workers.</summary>
public sealed class CacheMountRequestNotAuthorizedException(string? tenant, string id, string reason)
    : FarmException(FarmErrorCodes.CacheMountRequestNotAuthorized, $"a request for cache mount '{id}' of tenant '{tenant ?? "(none)"}' is refused: {reason}. Only the farm's workers may use cache mounts (Farm:Coordinator:Auth:WorkerAmqpUsers lists their RabbitMQ users)");
