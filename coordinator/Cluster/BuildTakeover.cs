using Farm.Coordinator.Grains;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Cluster;

/// <summary>
/// Takes over the builds of a silo as soon as the cluster declares it dead, instead of at the next tick of their
/// resume reminders (up to <see cref="Hosting.CoordinatorOptions.ResumeCheckPeriod"/> later): it reads the unfinished
/// builds from the reminder table and asks each build grain to check its run (<see cref="IBuildGrain.CheckRunAsync"/>).
/// A grain whose run is on a live silo with a fresh heartbeat leaves it there, so asking every build is safe and a
/// build runs once; the reminders stay as the fallback.
/// </summary>
internal sealed partial class BuildTakeover(
    IClusterMembershipService membership,
    IReminderTable reminders,
    IGrainFactory grains,
    ILocalSiloDetails silo,
    ILogger<BuildTakeover> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var known = membership.CurrentSnapshot;
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken).ConfigureAwait(false))
            {
                var dead = snapshot.CreateUpdate(known).Changes
                    .Where(c => c.Status == SiloStatus.Dead && !c.SiloAddress.Equals(silo.SiloAddress))
                    .Select(c => c.SiloAddress)
                    .ToList();
                known = snapshot;
                if (dead.Count > 0 && snapshot.GetSiloStatus(silo.SiloAddress) == SiloStatus.Active)
                {
                    await TakeOverAsync(dead, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task TakeOverAsync(List<SiloAddress> dead, CancellationToken cancellationToken)
    {
        try
        {
            // Begin equal to end reads the whole ring.
            var table = await reminders.ReadRows(0, 0, cancellationToken).ConfigureAwait(false);
            var builds = table.Reminders.Where(r => r.ReminderName == BuildGrain.ResumeReminder).Select(r => r.GrainId).Distinct().ToList();
            LogTakingOver(logger, string.Join(", ", dead), builds.Count);
            await Task.WhenAll(builds.Select(id => CheckAsync(grains.GetGrain<IBuildGrain>(id), cancellationToken))).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The reminders still fire: takeover only takes longer.
            LogTakeoverFailed(logger, e);
        }
    }

    private async Task CheckAsync(IBuildGrain build, CancellationToken cancellationToken)
    {
        var id = build.GetPrimaryKey();
        // The grain may still be registered on the dead silo for a moment while the directory catches up.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await build.CheckRunAsync().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && attempt < 5)
            {
                LogCheckRetry(logger, e, id, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silo {Dead} declared dead: checking the runs of {Builds} unfinished builds")]
    private static partial void LogTakingOver(ILogger logger, string dead, int builds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Taking over the builds of a dead silo failed; their reminders resume them")]
    private static partial void LogTakeoverFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Build {BuildId}: checking its run failed (attempt {Attempt}), retrying")]
    private static partial void LogCheckRetry(ILogger logger, Exception exception, Guid buildId, int attempt);
}
