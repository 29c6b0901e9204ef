using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Catalog;

/// <summary>
/// The daemon's SQLite database: connection settings and schema migrations. Callers open a
/// connection per operation (<see cref="Open"/> to read, <see cref="OpenWriterAsync"/> to write);
/// the provider pools them underneath.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "SemaphoreSlim needs disposing only once its AvailableWaitHandle is used, which Bough never does; the catalog lives as long as the daemon.")]
public sealed class CatalogDb
{
    /// <summary>How long a writer waits for another writer's lock before SQLITE_BUSY.</summary>
    public const int BusyTimeoutMs = 10_000;

    private readonly string _connectionString;
    private readonly IReadOnlyList<Migration> _migrations;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writers = new(1, 1);

    static CatalogDb() => SQLitePCL.Batteries_V2.Init();

    public CatalogDb(string dbPath, ILogger<CatalogDb>? l = null)
        : this(dbPath, CatalogMigrations.All, l)
    {
    }

    /// <summary>With an explicit migration list (tests, tools). Versions must be strictly increasing from 1.</summary>
    public CatalogDb(string dbPath, IReadOnlyList<Migration> migrations, ILogger<CatalogDb>? l = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dbPath);
        ArgumentNullException.ThrowIfNull(migrations);
        ValidateMigrations(migrations);
        DbPath = Path.GetFullPath(dbPath);
        _migrations = migrations;
        _logger = (ILogger?)l ?? NullLogger.Instance;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = DbPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = BusyTimeoutMs / 1000,
        }.ToString();
    }

    public string DbPath { get; }

    /// <summary>Schema version after <see cref="MigrateAsync"/>; 0 before it ran.</summary>
    public int SchemaVersion { get; private set; }

    /// <summary>Highest version this build knows.</summary>
    public int LatestKnownVersion => _migrations.Count == 0 ? 0 : _migrations[^1].Version;

    /// <summary>
    /// Opens a connection for one write, after the writers of this process before it. SQLite takes one writer at a
    /// time and makes the others wait in its busy handler, which sleeps on the calling thread: a burst of writes (a
    /// hundred sandboxes starting at once) would tie up the thread pool and stall everything else. Queued here they
    /// wait without a thread; the busy timeout still covers writers in other processes. Dispose to let the next in.
    /// </summary>
    public async Task<CatalogWriter> OpenWriterAsync(CancellationToken ct)
    {
        await _writers.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return new CatalogWriter(Open(), _writers);
        }
        catch
        {
            _writers.Release();
            throw;
        }
    }

    /// <summary>
    /// Closes the idle pooled connections to this database file (and only this one), e.g. before the file is removed.
    /// Connections in use are closed when they are returned.
    /// </summary>
    public void ClearPool()
    {
        using var conn = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(conn);
    }

    /// <summary>
    /// Opens a connection with per-connection settings applied (busy timeout, foreign keys).
    /// WAL is a property of the database file and is set once by <see cref="MigrateAsync"/>.
    /// </summary>
    public SqliteConnection Open()
    {
        var conn = new SqliteConnection(_connectionString);
        try
        {
            conn.Open();
            using var cmd = conn.CreateCommand();
            cmd.CommandText = $"PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA foreign_keys = ON;";
            cmd.ExecuteNonQuery();
            return conn;
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Brings the schema to <see cref="LatestKnownVersion"/>. Idempotent and safe against a
    /// concurrent migrator (each step re-checks under a write lock). A database newer than this
    /// build is refused without touching it, so an accidental downgrade cannot corrupt it.
    /// </summary>
    public Task MigrateAsync(CancellationToken ct) => Task.Run(() => Migrate(ct), ct);

    private void Migrate(CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DbPath)!);
        using var conn = Open();

        int current = ReadVersion(conn, tx: null);
        if (current > LatestKnownVersion)
        {
            throw new CatalogSchemaException(
                $"Catalog '{DbPath}' has schema version {current}, newer than this build knows ({LatestKnownVersion}). " +
                "Upgrade Bough or use a different data directory.");
        }

        Exec(conn, null, "PRAGMA journal_mode = WAL;");
        Exec(conn, null, """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER NOT NULL PRIMARY KEY,
                name       TEXT    NOT NULL,
                applied_at TEXT    NOT NULL
            );
            """);

        foreach (var m in _migrations)
        {
            ct.ThrowIfCancellationRequested();
            if (m.Version <= current) continue;
            using var tx = conn.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: take the write lock up front
            int inTx = ReadVersion(conn, tx);
            if (inTx >= m.Version)
            {
                current = inTx; // another process got there first
                tx.Rollback();
                continue;
            }
            try
            {
                Exec(conn, tx, m.Sql);
                using (var ins = conn.CreateCommand())
                {
                    ins.Transaction = tx;
                    ins.CommandText = "INSERT INTO schema_migrations(version, name, applied_at) VALUES ($v, $n, $t);";
                    ins.Parameters.AddWithValue("$v", m.Version);
                    ins.Parameters.AddWithValue("$n", m.Name);
                    ins.Parameters.AddWithValue("$t", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));
                    ins.ExecuteNonQuery();
                }
                tx.Commit();
            }
            catch (Exception e) when (e is SqliteException or InvalidOperationException)
            {
                try { tx.Rollback(); } catch (Exception re) when (re is SqliteException or InvalidOperationException) { }
                throw new CatalogSchemaException(
                    $"Catalog migration {m.Version} '{m.Name}' failed and was rolled back: {e.Message}", e);
            }
            current = m.Version;
            _logger.LogInformation("Applied catalog migration {Version} {Name}", m.Version, m.Name);
        }
        SchemaVersion = current;
    }

    private static int ReadVersion(SqliteConnection conn, SqliteTransaction? tx)
    {
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations';";
        if (Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) == 0) return 0;
        cmd.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations;";
        return Convert.ToInt32(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void Exec(SqliteConnection conn, SqliteTransaction? tx, string sql)
    {
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static void ValidateMigrations(IReadOnlyList<Migration> migrations)
    {
        int previous = 0;
        foreach (var m in migrations)
        {
            if (m.Version <= previous)
                throw new ArgumentException($"Migration versions must be strictly increasing and positive (got {m.Version} after {previous}).", nameof(migrations));
            ArgumentException.ThrowIfNullOrWhiteSpace(m.Sql, nameof(migrations));
            previous = m.Version;
        }
    }
}

/// <summary>A connection for one write (<see cref="CatalogDb.OpenWriterAsync"/>); disposing it lets the next writer in.</summary>
public sealed class CatalogWriter : IAsyncDisposable
{
    private SemaphoreSlim? _gate;

    internal CatalogWriter(SqliteConnection connection, SemaphoreSlim gate)
    {
        Connection = connection;
        _gate = gate;
    }

    public SqliteConnection Connection { get; }

    public async ValueTask DisposeAsync()
    {
        try { await Connection.DisposeAsync().ConfigureAwait(false); }
        finally { Interlocked.Exchange(ref _gate, null)?.Release(); }
    }
}
