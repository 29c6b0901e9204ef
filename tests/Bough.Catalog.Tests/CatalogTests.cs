using Bough.Catalog;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Bough.Catalog.Tests;

/// <summary>Migrations (order, idempotence, refusal, rollback) and the sandbox store against a real SQLite file.</summary>
public sealed class CatalogTests : IDisposable
{
    private readonly TempDir _dir = new("catalog");
    private string DbPath => _dir.Combine("bough.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    private static readonly Migration M1 = new(1, "a", "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);");
    private static readonly Migration M2 = new(2, "a-y", "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO a(x, y) VALUES ('one', 'two');");
    private static readonly Migration M3 = new(3, "b", "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id));");

    private static long Scalar(CatalogDb db, string sql)
    {
        using var conn = db.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    private static string Text(CatalogDb db, string sql)
    {
        using var conn = db.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToString(cmd.ExecuteScalar()) ?? "";
    }

    private static bool TableExists(CatalogDb db, string name) =>
        Scalar(db, $"SELECT count(*) FROM sqlite_master WHERE type='table' AND name='{name}'") == 1;

    [Fact]
    public async Task Migrate_Fresh_AppliesBuiltInSchema_WithWalAndForeignKeys()
    {
        var db = new CatalogDb(DbPath);
        Assert.Equal(0, db.SchemaVersion);
        await db.MigrateAsync(CancellationToken.None);

        Assert.Equal(CatalogMigrations.All[^1].Version, db.SchemaVersion);
        Assert.True(TableExists(db, "sandboxes"));
        Assert.Equal("wal", Text(db, "PRAGMA journal_mode;"));
        Assert.Equal(1, Scalar(db, "PRAGMA foreign_keys;"));
        Assert.True(Scalar(db, "PRAGMA busy_timeout;") >= 1000);
    }

    [Fact]
    public async Task Migrate_AppliesInOrder_AndIsIdempotent_AndPicksUpNewOnes()
    {
        var db = new CatalogDb(DbPath, [M1, M2]);
        await db.MigrateAsync(CancellationToken.None);
        Assert.Equal(2, db.SchemaVersion);
        Assert.Equal("1,2", Text(db, "SELECT group_concat(version) FROM (SELECT version FROM schema_migrations ORDER BY version)"));
        Assert.Equal(1, Scalar(db, "SELECT count(*) FROM a WHERE y = 'two'")); // M2 ran after M1

        // Again: nothing re-applied (M2's INSERT would duplicate the row).
        var again = new CatalogDb(DbPath, [M1, M2]);
        await again.MigrateAsync(CancellationToken.None);
        Assert.Equal(2, again.SchemaVersion);
        Assert.Equal(1, Scalar(again, "SELECT count(*) FROM a"));
        Assert.Equal(2, Scalar(again, "SELECT count(*) FROM schema_migrations"));

        // A newer build applies only the new step.
        var newer = new CatalogDb(DbPath, [M1, M2, M3]);
        await newer.MigrateAsync(CancellationToken.None);
        Assert.Equal(3, newer.SchemaVersion);
        Assert.True(TableExists(newer, "b"));
        Assert.Equal(1, Scalar(newer, "SELECT count(*) FROM a"));
    }

    [Fact]
    public async Task Migrate_DatabaseNewerThanCode_IsRefusedWithoutChanges()
    {
        await new CatalogDb(DbPath, [M1, M2, M3]).MigrateAsync(CancellationToken.None);
        SqliteConnection.ClearAllPools();
        string schemaBefore = Text(new CatalogDb(DbPath, [M1, M2, M3]), "SELECT group_concat(sql, ';') FROM sqlite_master");

        var old = new CatalogDb(DbPath, [M1, M2]);
        var ex = await Assert.ThrowsAsync<CatalogSchemaException>(() => old.MigrateAsync(CancellationToken.None));
        Assert.Contains("newer", ex.Message);
        Assert.Contains("3", ex.Message);
        Assert.Equal(0, old.SchemaVersion);

        var check = new CatalogDb(DbPath, [M1, M2, M3]);
        Assert.Equal(schemaBefore, Text(check, "SELECT group_concat(sql, ';') FROM sqlite_master"));
        Assert.Equal(3, Scalar(check, "SELECT max(version) FROM schema_migrations"));
    }

    [Fact]
    public async Task Migrate_FailingMigration_RollsBackCompletely()
    {
        var bad = new Migration(2, "broken",
            "CREATE TABLE half (x INTEGER); INSERT INTO a(x) VALUES ('partial'); INSERT INTO no_such_table VALUES (1);");
        var db = new CatalogDb(DbPath, [M1, bad]);
        var ex = await Assert.ThrowsAsync<CatalogSchemaException>(() => db.MigrateAsync(CancellationToken.None));
        Assert.Contains("broken", ex.Message);

        var check = new CatalogDb(DbPath, [M1]);
        Assert.False(TableExists(check, "half"));
        Assert.Equal(0, Scalar(check, "SELECT count(*) FROM a"));
        Assert.Equal(1, Scalar(check, "SELECT max(version) FROM schema_migrations"));

        // Fixed code migrates fine afterwards.
        var fixedDb = new CatalogDb(DbPath, [M1, M2]);
        await fixedDb.MigrateAsync(CancellationToken.None);
        Assert.Equal(2, fixedDb.SchemaVersion);
    }

    [Fact]
    public void Migrations_MustBeStrictlyIncreasing()
    {
        Assert.Throws<ArgumentException>(() => new CatalogDb(DbPath, [M2, M1]));
        Assert.Throws<ArgumentException>(() => new CatalogDb(DbPath, [M1, M1]));
    }

    private static SandboxRecord Sample(string id) => new()
    {
        Id = id,
        State = SandboxState.Running,
        StateReason = null,
        Image = "base",
        Vcpus = 2,
        MemoryMiB = 512,
        Metadata = new Dictionary<string, string> { ["owner"] = "alice", ["unicode"] = "ü \"quoted\" ,;" },
        Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin", ["EMPTY"] = "" },
        Ports = [new PortRecord(8080, 40001), new PortRecord(22, 0)],
        Internet = false,
        Accel = "tcg",
        Pid = 4242,
        RuntimeDir = "/var/lib/bough/sandboxes/" + id,
    };

    [Fact]
    public async Task Store_CrudRoundTrip_IncludingJsonColumns()
    {
        var db = new CatalogDb(DbPath);
        await db.MigrateAsync(CancellationToken.None);
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567));
        var store = new SandboxStore(db, clock);
        var ct = CancellationToken.None;

        var original = Sample("sb-1");
        await store.InsertAsync(original, ct);
        var got = await store.GetAsync("sb-1", ct);
        Assert.NotNull(got);
        Assert.Equal(clock.GetUtcNow(), got.CreatedAt);
        Assert.Equal(clock.GetUtcNow(), got.UpdatedAt);
        Assert.Equal(SandboxState.Running, got.State);
        Assert.Null(got.StateReason);
        Assert.Equal(2, got.Vcpus);
        Assert.Equal(512, got.MemoryMiB);
        Assert.Equal(original.Metadata, got.Metadata);
        Assert.Equal(original.Env, got.Env);
        Assert.Equal(original.Ports, got.Ports);
        Assert.False(got.Internet);
        Assert.Equal("tcg", got.Accel);
        Assert.Equal(4242, got.Pid);
        Assert.Equal(original.RuntimeDir, got.RuntimeDir);

        await Assert.ThrowsAsync<SandboxAlreadyExistsException>(() => store.InsertAsync(original, ct));

        // Explicit timestamps are kept, with offsets normalised to UTC.
        var created = new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.FromHours(2));
        await store.InsertAsync(Sample("sb-2") with { CreatedAt = created, UpdatedAt = created, Pid = null }, ct);
        var second = await store.GetAsync("sb-2", ct);
        Assert.Equal(created, second!.CreatedAt);
        Assert.Equal(TimeSpan.Zero, second.CreatedAt.Offset);
        Assert.Null(second.Pid);

        var list = await store.ListAsync(ct);
        Assert.Equal(["sb-2", "sb-1"], list.Select(r => r.Id)); // oldest first

        clock.Advance(TimeSpan.FromMinutes(1));
        await store.UpdateAsync(got with
        {
            State = SandboxState.Stopped,
            StateReason = "user asked",
            Ports = [new PortRecord(8080, 40002)],
            Metadata = new Dictionary<string, string>(),
            Pid = null,
            CreatedAt = DateTimeOffset.UnixEpoch, // ignored: created_at is immutable
        }, ct);
        var updated = await store.GetAsync("sb-1", ct);
        Assert.Equal(SandboxState.Stopped, updated!.State);
        Assert.Equal("user asked", updated.StateReason);
        Assert.Equal([new PortRecord(8080, 40002)], updated.Ports);
        Assert.Empty(updated.Metadata);
        Assert.Null(updated.Pid);
        Assert.Equal(got.CreatedAt, updated.CreatedAt);
        Assert.Equal(clock.GetUtcNow(), updated.UpdatedAt);

        clock.Advance(TimeSpan.FromMinutes(1));
        await store.SetStateAsync("sb-1", SandboxState.Dead, "qemu exited", ct);
        var dead = await store.GetAsync("sb-1", ct);
        Assert.Equal(SandboxState.Dead, dead!.State);
        Assert.Equal("qemu exited", dead.StateReason);
        Assert.Equal(clock.GetUtcNow(), dead.UpdatedAt);
        Assert.Equal(updated.Env, dead.Env);

        await Assert.ThrowsAsync<SandboxNotFoundException>(() => store.SetStateAsync("nope", SandboxState.Dead, null, ct));
        await Assert.ThrowsAsync<SandboxNotFoundException>(() => store.UpdateAsync(Sample("nope"), ct));

        Assert.True(await store.DeleteAsync("sb-1", ct));
        Assert.False(await store.DeleteAsync("sb-1", ct));
        Assert.Null(await store.GetAsync("sb-1", ct));
        Assert.Single(await store.ListAsync(ct));
    }

    /// <summary>
    /// Writers of one process queue on the catalog's async gate instead of sleeping in SQLite's busy handler; a burst
    /// of them all lands, and a write that fails (a duplicate id) still lets the next one in.
    /// </summary>
    [Fact]
    public async Task Concurrent_writes_all_land_and_a_failed_write_releases_the_writer_gate()
    {
        var db = new CatalogDb(DbPath);
        await db.MigrateAsync(CancellationToken.None);
        var store = new SandboxStore(db);
        var ct = CancellationToken.None;

        await Task.WhenAll(Enumerable.Range(0, 64).Select(i => store.InsertAsync(Sample($"sb-burst{i:D4}"), ct)));
        await Task.WhenAll(Enumerable.Range(0, 64).Select(i => store.SetStateAsync($"sb-burst{i:D4}", SandboxState.Running, null, ct)));
        Assert.Equal(64, (await store.ListAsync(ct)).Count(r => r.State == SandboxState.Running));

        await Assert.ThrowsAsync<SandboxAlreadyExistsException>(() => store.InsertAsync(Sample("sb-burst0000"), ct));
        Assert.True(await store.DeleteAsync("sb-burst0001", ct).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Store_RoundTrips_the_containment_columns_and_defaults_them_for_old_rows()
    {
        var db = new CatalogDb(DbPath);
        await db.MigrateAsync(CancellationToken.None);
        var store = new SandboxStore(db);
        var ct = CancellationToken.None;
        var end = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        var full = Sample("sb-c") with
        {
            VmUid = 1_900_000_042, EndAt = end, OnTimeout = TimeoutAction.Pause,
            Network = new EgressRules(["203.0.113.0/24"], ["203.0.113.9/32"]), Boot = BootMode.Restored,
        };
        await store.InsertAsync(full, ct);
        var got = await store.GetAsync("sb-c", ct);
        Assert.NotNull(got);
        Assert.Equal(BootMode.Restored, got.Boot);
        Assert.Equal(1_900_000_042, got.VmUid);
        Assert.Equal(end, got.EndAt);
        Assert.Equal(TimeoutAction.Pause, got.OnTimeout);
        Assert.Equal(["203.0.113.0/24"], got.Network!.AllowOut);
        Assert.Equal(["203.0.113.9/32"], got.Network.DenyOut);

        await store.UpdateAsync(got with { VmUid = null, EndAt = null, Network = null, OnTimeout = TimeoutAction.Kill }, ct);
        var cleared = await store.GetAsync("sb-c", ct);
        Assert.Null(cleared!.VmUid);
        Assert.Null(cleared.EndAt);
        Assert.Null(cleared.Network);
        Assert.Equal(TimeoutAction.Kill, cleared.OnTimeout);

        await store.InsertAsync(Sample("sb-d"), ct);
        var plain = await store.GetAsync("sb-d", ct);
        Assert.Null(plain!.VmUid);
        Assert.Null(plain.Boot);
        Assert.Equal(TimeoutAction.Kill, plain.OnTimeout);
    }

    [Fact]
    public async Task Store_ConcurrentWriters_DoNotHitBusyErrors()
    {
        await new CatalogDb(DbPath).MigrateAsync(CancellationToken.None);
        // Two CatalogDb instances stand in for two processes sharing the file.
        var stores = new[] { new SandboxStore(new CatalogDb(DbPath)), new SandboxStore(new CatalogDb(DbPath)) };
        const int writers = 8, perWriter = 40;

        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var store = stores[w % 2];
            for (int i = 0; i < perWriter; i++)
            {
                string id = $"w{w}-{i}";
                await store.InsertAsync(Sample(id), CancellationToken.None);
                await store.SetStateAsync(id, SandboxState.Stopped, $"by {w}", CancellationToken.None);
                var r = await store.GetAsync(id, CancellationToken.None);
                await store.UpdateAsync(r! with { Vcpus = 4 }, CancellationToken.None);
                if (i % 2 == 0) Assert.True(await store.DeleteAsync(id, CancellationToken.None));
            }
        })).ToArray();
        await Task.WhenAll(tasks);

        var all = await stores[0].ListAsync(CancellationToken.None);
        Assert.Equal(writers * perWriter / 2, all.Count);
        Assert.All(all, r => Assert.Equal(4, r.Vcpus));
        Assert.All(all, r => Assert.Equal(SandboxState.Stopped, r.State));
    }
}
