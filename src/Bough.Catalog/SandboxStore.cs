using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Bough.Catalog;

/// <summary>
/// CRUD for sandbox rows. Each call opens its own (pooled) connection, so the store is safe
/// to share between threads; writes are single statements, serialised by SQLite's lock with
/// the busy timeout set by <see cref="CatalogDb"/>.
/// </summary>
public sealed class SandboxStore
{
    private const string Columns =
        "id, state, state_reason, image, vcpus, memory_mib, created_at, updated_at, " +
        "metadata_json, env_json, ports_json, internet, accel, pid, runtime_dir, snapshot_id, memory_file, disk_path, template, " +
        "vm_uid, end_at, on_timeout, network_json, boot";

    private const int SqliteConstraintPrimaryKey = 1555;
    private const int SqliteConstraintUnique = 2067;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly CatalogDb _db;
    private readonly TimeProvider _time;

    public SandboxStore(CatalogDb db) : this(db, TimeProvider.System) { }

    public SandboxStore(CatalogDb db, TimeProvider time)
    {
        _db = db ?? throw new ArgumentNullException(nameof(db));
        _time = time ?? throw new ArgumentNullException(nameof(time));
    }

    /// <summary>Inserts a new row. Unset (default) timestamps are filled with the current time.</summary>
    /// <exception cref="SandboxAlreadyExistsException">The id is taken.</exception>
    public async Task InsertAsync(SandboxRecord r, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(r);
        var now = _time.GetUtcNow();
        r = r with
        {
            CreatedAt = r.CreatedAt == default ? now : r.CreatedAt,
            UpdatedAt = r.UpdatedAt == default ? now : r.UpdatedAt,
        };
        await using var writer = await _db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"INSERT INTO sandboxes ({Columns}) VALUES " +
                          "($id, $state, $reason, $image, $vcpus, $mem, $created, $updated, $meta, $env, $ports, $internet, $accel, $pid, $dir, $snap, $memfile, $disk, $template, $vmuid, $endat, $ontimeout, $network, $boot);";
        Bind(cmd, r);
        try
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (SqliteException e) when (e.SqliteExtendedErrorCode is SqliteConstraintPrimaryKey or SqliteConstraintUnique)
        {
            throw new SandboxAlreadyExistsException(r.Id, e);
        }
    }

    public async Task<SandboxRecord?> GetAsync(string id, CancellationToken ct)
    {
        await using var conn = _db.Open();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM sandboxes WHERE id = $id;";
        cmd.Parameters.AddWithValue("$id", id);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? Read(reader) : null;
    }

    /// <summary>All rows, oldest first.</summary>
    public async Task<IReadOnlyList<SandboxRecord>> ListAsync(CancellationToken ct)
    {
        await using var conn = _db.Open();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM sandboxes ORDER BY created_at, id;";
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<SandboxRecord>();
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) list.Add(Read(reader));
        return list;
    }

    /// <summary>
    /// Replaces the whole row (except <c>created_at</c>) and sets <c>updated_at</c> to now,
    /// ignoring <see cref="SandboxRecord.UpdatedAt"/> on the argument.
    /// </summary>
    /// <exception cref="SandboxNotFoundException">No such row.</exception>
    public async Task UpdateAsync(SandboxRecord r, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(r);
        r = r with { UpdatedAt = _time.GetUtcNow() };
        await using var writer = await _db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = """
            UPDATE sandboxes SET state = $state, state_reason = $reason, image = $image, vcpus = $vcpus,
                memory_mib = $mem, updated_at = $updated, metadata_json = $meta, env_json = $env,
                ports_json = $ports, internet = $internet, accel = $accel, pid = $pid, runtime_dir = $dir,
                snapshot_id = $snap, memory_file = $memfile, disk_path = $disk, template = $template,
                vm_uid = $vmuid, end_at = $endat, on_timeout = $ontimeout, network_json = $network, boot = $boot
            WHERE id = $id;
            """;
        Bind(cmd, r);
        if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new SandboxNotFoundException(r.Id);
    }

    /// <summary>Changes only state and reason (the common transition), bumping <c>updated_at</c>.</summary>
    /// <exception cref="SandboxNotFoundException">No such row.</exception>
    public async Task SetStateAsync(string id, SandboxState state, string? reason, CancellationToken ct)
    {
        await using var writer = await _db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "UPDATE sandboxes SET state = $state, state_reason = $reason, updated_at = $updated WHERE id = $id;";
        cmd.Parameters.AddWithValue("$id", id);
        cmd.Parameters.AddWithValue("$state", state.ToName());
        cmd.Parameters.AddWithValue("$reason", (object?)reason ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$updated", FormatTime(_time.GetUtcNow()));
        if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new SandboxNotFoundException(id);
    }

    /// <returns>False when there was no such row.</returns>
    public async Task<bool> DeleteAsync(string id, CancellationToken ct)
    {
        await using var writer = await _db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "DELETE FROM sandboxes WHERE id = $id;";
        cmd.Parameters.AddWithValue("$id", id);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
    }

    private static void Bind(SqliteCommand cmd, SandboxRecord r)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(r.Id, nameof(r.Id));
        var p = cmd.Parameters;
        p.AddWithValue("$id", r.Id);
        p.AddWithValue("$state", r.State.ToName());
        p.AddWithValue("$reason", (object?)r.StateReason ?? DBNull.Value);
        p.AddWithValue("$image", r.Image);
        p.AddWithValue("$vcpus", r.Vcpus);
        p.AddWithValue("$mem", r.MemoryMiB);
        p.AddWithValue("$created", FormatTime(r.CreatedAt));
        p.AddWithValue("$updated", FormatTime(r.UpdatedAt));
        p.AddWithValue("$meta", JsonSerializer.Serialize(r.Metadata, Json));
        p.AddWithValue("$env", JsonSerializer.Serialize(r.Env, Json));
        p.AddWithValue("$ports", JsonSerializer.Serialize(r.Ports, Json));
        p.AddWithValue("$internet", r.Internet ? 1 : 0);
        p.AddWithValue("$accel", r.Accel);
        p.AddWithValue("$pid", (object?)r.Pid ?? DBNull.Value);
        p.AddWithValue("$dir", r.RuntimeDir);
        p.AddWithValue("$snap", (object?)r.SnapshotId ?? DBNull.Value);
        p.AddWithValue("$memfile", (object?)r.MemoryFile ?? DBNull.Value);
        p.AddWithValue("$disk", (object?)r.DiskPath ?? DBNull.Value);
        p.AddWithValue("$template", (object?)r.Template ?? DBNull.Value);
        p.AddWithValue("$vmuid", (object?)r.VmUid ?? DBNull.Value);
        p.AddWithValue("$endat", r.EndAt is { } end ? FormatTime(end) : DBNull.Value);
        p.AddWithValue("$ontimeout", r.OnTimeout == TimeoutAction.Pause ? "pause" : "kill");
        p.AddWithValue("$network", r.Network is { } n ? JsonSerializer.Serialize(n, Json) : DBNull.Value);
        p.AddWithValue("$boot", r.Boot is { } b ? b.ToName() : DBNull.Value);
    }

    private static SandboxRecord Read(SqliteDataReader x) => new()
    {
        Id = x.GetString(0),
        State = CatalogNames.ParseSandboxState(x.GetString(1)),
        StateReason = x.IsDBNull(2) ? null : x.GetString(2),
        Image = x.GetString(3),
        Vcpus = x.GetInt32(4),
        MemoryMiB = x.GetInt32(5),
        CreatedAt = ParseTime(x.GetString(6)),
        UpdatedAt = ParseTime(x.GetString(7)),
        Metadata = JsonSerializer.Deserialize<Dictionary<string, string>>(x.GetString(8), Json) ?? [],
        Env = JsonSerializer.Deserialize<Dictionary<string, string>>(x.GetString(9), Json) ?? [],
        Ports = JsonSerializer.Deserialize<List<PortRecord>>(x.GetString(10), Json) ?? [],
        Internet = x.GetInt64(11) != 0,
        Accel = x.GetString(12),
        Pid = x.IsDBNull(13) ? null : x.GetInt32(13),
        RuntimeDir = x.GetString(14),
        SnapshotId = x.IsDBNull(15) ? null : x.GetString(15),
        MemoryFile = x.IsDBNull(16) ? null : x.GetString(16),
        DiskPath = x.IsDBNull(17) ? null : x.GetString(17),
        Template = x.IsDBNull(18) ? null : x.GetString(18),
        VmUid = x.IsDBNull(19) ? null : x.GetInt32(19),
        EndAt = x.IsDBNull(20) ? null : ParseTime(x.GetString(20)),
        OnTimeout = !x.IsDBNull(21) && x.GetString(21) == "pause" ? TimeoutAction.Pause : TimeoutAction.Kill,
        Network = x.IsDBNull(22) ? null : JsonSerializer.Deserialize<EgressRules>(x.GetString(22), Json),
        Boot = x.IsDBNull(23) ? null : CatalogNames.ParseBootMode(x.GetString(23)),
    };

    /// <summary>Fixed-width UTC ISO 8601 so text order equals time order.</summary>
    internal static string FormatTime(DateTimeOffset t) =>
        t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    internal static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.ParseExact(s, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
