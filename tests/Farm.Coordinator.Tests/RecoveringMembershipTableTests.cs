using System.Globalization;
using System.Net;
using Farm.Coordinator.Cluster;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The membership table's repair after Redis lost its data, at an interleaving the whole-farm test
/// (<see cref="RedisFaultTests"/>) meets only by chance: one silo reads the table while another is putting it back a
/// row at a time.
/// </summary>
public sealed class RecoveringMembershipTableTests
{
    [Fact]
    public async Task A_silo_that_reads_the_table_halfway_through_another_silos_rebuild_still_puts_its_own_row_back()
    {
        var redis = new LosableTable();
        var a = Silo(11111);
        var b = Silo(22222);
        using var tableA = Recovering(redis, a);
        using var tableB = Recovering(redis, b);
        await tableA.InitializeMembershipTableAsync(tryInitTableVersion: true);
        Assert.True(await tableA.InsertRowAsync(Entry(a), (await tableA.ReadAllAsync()).Version.Next()));
        Assert.True(await tableB.InsertRowAsync(Entry(b), (await tableB.ReadAllAsync()).Version.Next()));
        await tableA.ReadAllAsync();

        // Redis comes back empty; the other silo's rebuild has put its own row back, not yet this one's, when this
        // silo reads the table. Then the rebuild stops there (its silo is killed, say).
        redis.Lose();
        await redis.InitializeMembershipTableAsync(tryInitTableVersion: true);
        Assert.True(await redis.InsertRowAsync(Entry(b), new TableVersion(1, "0")));
        var halfway = await tableA.ReadAllAsync();
        Assert.DoesNotContain(halfway.Members, m => m.Item1.SiloAddress.Equals(a));

        // This silo's next heartbeat finds its row gone: it repairs the table, and the heartbeat then succeeds.
        await tableA.UpdateIAmAliveAsync(Entry(a));

        var table = await redis.ReadAllAsync();
        Assert.Contains(table.Members, m => m.Item1.SiloAddress.Equals(a));
        Assert.Contains(table.Members, m => m.Item1.SiloAddress.Equals(b));
        Assert.True(table.Version.Version > 2, $"the rebuilt table's version {table.Version.Version} must pass the 2 this silo saw before");
    }

    private static RecoveringMembershipTable Recovering(IMembershipTable inner, SiloAddress silo) =>
        new(inner, new ClusterHealth(), new Details(silo), NullLogger<RecoveringMembershipTable>.Instance);

    private static SiloAddress Silo(int port) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 1);

    private static MembershipEntry Entry(SiloAddress silo) => new()
    {
        SiloAddress = silo,
        Status = SiloStatus.Active,
        SiloName = silo.ToString(),
        HostName = "localhost",
        StartTime = DateTime.UtcNow,
        IAmAliveTime = DateTime.UtcNow,
    };

    private sealed class Details(SiloAddress silo) : ILocalSiloDetails
    {
        public string Name => SiloAddress.ToString();

        public string ClusterId => "test";

        public string DnsHostName => "localhost";

        public SiloAddress SiloAddress => silo;

        public SiloAddress GatewayAddress => silo;
    }

    /// <summary>
    /// A membership table with the Redis table's rules (one version step per conditional write, every row's etag the
    /// table version's, the errors it gives once its data is gone), whose data the test can lose at any moment: a
    /// fault a real Redis gives only at the moment it restarts.
    /// </summary>
    private sealed class LosableTable : IMembershipTable
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<SiloAddress, MembershipEntry> _rows = [];
        private int? _version;

        public void Lose()
        {
            lock (_lock)
            {
                _rows.Clear();
                _version = null;
            }
        }

        public Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                _version ??= 0;
            }

            return Task.CompletedTask;
        }

        public Task<MembershipTableData> ReadAllAsync(CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                var version = Version();
                return Task.FromResult(new MembershipTableData(
                    _rows.Values.Select(r => Tuple.Create(r, version.VersionEtag)).ToList(),
                    version));
            }
        }

        public Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                var version = Version();
                return Task.FromResult(new MembershipTableData(
                    _rows.Values.Where(r => r.SiloAddress.Equals(key)).Select(r => Tuple.Create(r, version.VersionEtag)).ToList(),
                    version));
            }
        }

        public Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                if (_rows.ContainsKey(entry.SiloAddress) || tableVersion.Version != Version().Version + 1)
                {
                    return Task.FromResult(false);
                }

                _rows[entry.SiloAddress] = entry;
                _version = tableVersion.Version;
                return Task.FromResult(true);
            }
        }

        public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                var version = Version();
                if (!_rows.ContainsKey(entry.SiloAddress) || etag != version.VersionEtag || tableVersion.Version != version.Version + 1)
                {
                    return Task.FromResult(false);
                }

                _rows[entry.SiloAddress] = entry;
                _version = tableVersion.Version;
                return Task.FromResult(true);
            }
        }

        public Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                if (!_rows.TryGetValue(entry.SiloAddress, out var row))
                {
                    // What Orleans' Redis table's script answers for a row that is not there.
                    throw new InvalidOperationException("ERR user_script:2: bad argument #1 to 'find' (string expected, got boolean)");
                }

                row.IAmAliveTime = entry.IAmAliveTime;
                return Task.CompletedTask;
            }
        }

        public Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken cancellationToken = default)
        {
            Lose();
            return Task.CompletedTask;
        }

        public Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task InitializeMembershipTable(bool tryInitTableVersion) => InitializeMembershipTableAsync(tryInitTableVersion);

        public Task DeleteMembershipTableEntries(string clusterId) => DeleteMembershipTableEntriesAsync(clusterId);

        public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => CleanupDefunctSiloEntriesAsync(beforeDate);

        public Task<MembershipTableData> ReadRow(SiloAddress key) => ReadRowAsync(key);

        public Task<MembershipTableData> ReadAll() => ReadAllAsync();

        public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => InsertRowAsync(entry, tableVersion);

        public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => UpdateRowAsync(entry, etag, tableVersion);

        public Task UpdateIAmAlive(MembershipEntry entry) => UpdateIAmAliveAsync(entry);

        private TableVersion Version() =>
            _version is { } v
                ? new TableVersion(v, v.ToString(CultureInfo.InvariantCulture))
                : throw new InvalidOperationException("The Redis membership table version is missing");
    }
}
