using System.Collections.Immutable;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Cluster;

/// <summary>
/// Orleans' Redis membership table, made to survive a Redis that comes back empty. Orleans creates the table (its
/// version row) only when a silo starts; afterwards every read throws "The Redis membership table version is
/// missing", so no silo can be declared dead and nothing a dead silo owned moves. This decorator remembers the rows it
/// last read or wrote; when the table is gone it creates it again and puts back every row that was not dead (this
/// silo's first), with a table version above any seen, so the silos' views carry on from it. A silo that died
/// meanwhile is back as it was last seen, and the usual probes declare it dead.
/// </summary>
/// <remarks>
/// Hand-written because Orleans has no hook for a lost table; it works through <see cref="IMembershipTable"/> only
/// and never touches Redis keys itself. Failures are reported to <see cref="ClusterHealth"/>.
/// </remarks>
internal sealed partial class RecoveringMembershipTable(
    IMembershipTable inner,
    ClusterHealth health,
    ILocalSiloDetails silo,
    ILogger<RecoveringMembershipTable> logger) : IMembershipTable, IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _repair = new(1, 1);
    private ImmutableDictionary<SiloAddress, MembershipEntry> _rows = ImmutableDictionary<SiloAddress, MembershipEntry>.Empty;
    private int _version;

    /// <summary>
    /// Whether an exception says the table, or this silo's row, is gone (Redis lost its data or the key was deleted):
    /// Orleans 10.4's Redis table reports a missing version row in words, and a missing row on an IAmAlive update as
    /// the failure of its Lua script on a nil row.
    /// </summary>
    internal static bool IsTableLost(Exception e) =>
        e.Message.Contains("membership table version is missing", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("to 'find' (string expected, got boolean)", StringComparison.Ordinal);

    /// <summary>
    /// Creates the table again when it is gone and puts back the rows known here that are missing (this silo's first),
    /// then moves the table version past every version this silo has seen (Orleans ignores a table older than its
    /// view, and its table accepts one version step per write). True when anything was written. Safe to call from
    /// every silo at once: every write is conditional on the table version, and a row already back is skipped.
    /// </summary>
    public async Task<bool> RepairAsync(CancellationToken cancellationToken)
    {
        await _repair.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var floor = _version;
            MembershipTableData table;
            try
            {
                table = await inner.ReadAllAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTableLost(e))
            {
                LogTableLost(logger, _rows.Count);
                // Creates the version row when missing (and only then).
                await inner.InitializeMembershipTableAsync(tryInitTableVersion: true, cancellationToken).ConfigureAwait(false);
                table = await inner.ReadAllAsync(cancellationToken).ConfigureAwait(false);
            }

            var wrote = false;
            for (var attempt = 0; attempt < 1000; attempt++)
            {
                var present = table.Members.ToDictionary(m => m.Item1.SiloAddress, m => m.Item1);
                var missing = _rows.Values
                    .Where(r => r.Status != SiloStatus.Dead && !present.ContainsKey(r.SiloAddress))
                    .OrderBy(r => r.SiloAddress.Equals(silo.SiloAddress) ? 0 : 1)
                    .FirstOrDefault();
                var next = table.Version.Next();
                if (missing is not null)
                {
                    wrote |= await inner.InsertRowAsync(missing, next, cancellationToken).ConfigureAwait(false);
                }
                else if (table.Version.Version <= floor && present.TryGetValue(silo.SiloAddress, out var own))
                {
                    // Rewriting this silo's row steps the version by one.
                    wrote |= await inner.UpdateRowAsync(own, table.Version.VersionEtag, next, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    Remember(table);
                    if (wrote)
                    {
                        LogRepaired(logger, table.Members.Count, table.Version.Version);
                    }

                    health.MembershipSucceeded();
                    return wrote;
                }

                table = await inner.ReadAllAsync(cancellationToken).ConfigureAwait(false);
            }

            throw new InvalidOperationException("The membership table could not be rebuilt: every write conflicted.");
        }
        finally
        {
            _repair.Release();
        }
    }

    public async Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken cancellationToken = default) =>
        await inner.InitializeMembershipTableAsync(tryInitTableVersion, cancellationToken).ConfigureAwait(false);

    public async Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken cancellationToken = default) =>
        await inner.DeleteMembershipTableEntriesAsync(clusterId, cancellationToken).ConfigureAwait(false);

    public Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken cancellationToken = default) =>
        GuardAsync(async () =>
        {
            await inner.CleanupDefunctSiloEntriesAsync(beforeDate, cancellationToken).ConfigureAwait(false);
            return true;
        }, afterRepair: NotWritten, cancellationToken);

    public Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken cancellationToken = default) =>
        GuardAsync(() => inner.ReadRowAsync(key, cancellationToken), afterRepair: null, cancellationToken);

    public Task<MembershipTableData> ReadAllAsync(CancellationToken cancellationToken = default) =>
        GuardAsync(
            async () =>
            {
                var table = await inner.ReadAllAsync(cancellationToken).ConfigureAwait(false);
                Remember(table);
                return table;
            },
            afterRepair: null,
            cancellationToken);

    public Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken cancellationToken = default) =>
        GuardAsync(
            async () =>
            {
                var inserted = await inner.InsertRowAsync(entry, tableVersion, cancellationToken).ConfigureAwait(false);
                Written(inserted, entry, tableVersion);
                return inserted;
            },
            afterRepair: NotWritten,
            cancellationToken);

    public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken cancellationToken = default) =>
        GuardAsync(
            async () =>
            {
                var updated = await inner.UpdateRowAsync(entry, etag, tableVersion, cancellationToken).ConfigureAwait(false);
                Written(updated, entry, tableVersion);
                return updated;
            },
            afterRepair: NotWritten,
            cancellationToken);

    public Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken cancellationToken = default) =>
        GuardAsync(
            async () =>
            {
                await inner.UpdateIAmAliveAsync(entry, cancellationToken).ConfigureAwait(false);
                return true;
            },
            afterRepair: null,
            cancellationToken);

    // The synchronous-era members Orleans still declares: the same operations without a token.
    public Task InitializeMembershipTable(bool tryInitTableVersion) => InitializeMembershipTableAsync(tryInitTableVersion, CancellationToken.None);

    public Task DeleteMembershipTableEntries(string clusterId) => DeleteMembershipTableEntriesAsync(clusterId, CancellationToken.None);

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => CleanupDefunctSiloEntriesAsync(beforeDate, CancellationToken.None);

    public Task<MembershipTableData> ReadRow(SiloAddress key) => ReadRowAsync(key, CancellationToken.None);

    public Task<MembershipTableData> ReadAll() => ReadAllAsync(CancellationToken.None);

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => InsertRowAsync(entry, tableVersion, CancellationToken.None);

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => UpdateRowAsync(entry, etag, tableVersion, CancellationToken.None);

    public Task UpdateIAmAlive(MembershipEntry entry) => UpdateIAmAliveAsync(entry, CancellationToken.None);

    private static readonly Func<Task<bool>> NotWritten = () => Task.FromResult(false);

    /// <summary>
    /// Runs a table operation; when the table is gone, repairs it, then runs <paramref name="afterRepair"/> (null: the
    /// operation again). Conditional writes answer "not written" then, so that Orleans reads the repaired table and
    /// decides again.
    /// </summary>
    private async Task<T> GuardAsync<T>(Func<Task<T>> operation, Func<Task<T>>? afterRepair, CancellationToken cancellationToken)
    {
        try
        {
            var result = await operation().ConfigureAwait(false);
            health.MembershipSucceeded();
            return result;
        }
        catch (Exception e) when (IsTableLost(e))
        {
            health.MembershipFailed(e.Message);
            await RepairAsync(cancellationToken).ConfigureAwait(false);
            var result = await (afterRepair ?? operation)().ConfigureAwait(false);
            health.MembershipSucceeded();
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            health.MembershipFailed(e.Message);
            throw;
        }
    }

    /// <summary>Disposes the wrapped table too: it was made for this wrapper, and holds the Redis connection.</summary>
    public async ValueTask DisposeAsync()
    {
        switch (inner)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }

        _repair.Dispose();
    }

    public void Dispose()
    {
        (inner as IDisposable)?.Dispose();
        _repair.Dispose();
    }

    /// <summary>
    /// Keeps the rows of a table read. A table older than one seen here is one being rebuilt (by this silo or another,
    /// a row at a time): its rows are added to those known, and the rows it does not hold yet are kept, so that a read
    /// in the middle of another silo's rebuild never makes this silo forget a row (its own included) that the rebuild
    /// has still to put back.
    /// </summary>
    private void Remember(MembershipTableData table)
    {
        var read = table.Members.ToImmutableDictionary(m => m.Item1.SiloAddress, m => m.Item1);
        _rows = table.Version.Version < _version ? _rows.SetItems(read) : read;
        _version = Math.Max(_version, table.Version.Version);
    }

    private void Written(bool written, MembershipEntry entry, TableVersion tableVersion)
    {
        if (written)
        {
            _rows = _rows.SetItem(entry.SiloAddress, entry);
            _version = Math.Max(_version, tableVersion.Version);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Redis membership table is gone (Redis lost its data); rebuilding it with the {Rows} rows known here")]
    private static partial void LogTableLost(ILogger logger, int rows);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Redis membership table is back: {Rows} rows, version {Version}")]
    private static partial void LogRepaired(ILogger logger, int rows, int version);
}
