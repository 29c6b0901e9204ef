using Microsoft.Data.Sqlite;

namespace Bough.Catalog;

/// <summary>One published snapshot. Rows are written only after the snapshot's directory is in place.</summary>
public sealed record SnapshotRecord
{
    public required string Id { get; init; }
    public string? Tag { get; init; }
    public string? ParentId { get; init; }
    public string? SourceSandboxId { get; init; }
    public int Depth { get; init; }
    public required SnapshotKind Kind { get; init; }
    public required string Image { get; init; }
    public int Vcpus { get; init; }
    public int MemoryMiB { get; init; }
    public long MemoryBytes { get; init; }
    public long DiskBytes { get; init; }
    public long? PauseMs { get; init; }
    public required string Dir { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>
    /// False only for a branch snapshot nobody named or asked to keep: it is collected once no
    /// sandbox, template or child snapshot depends on it.
    /// </summary>
    public bool Keep { get; init; } = true;
    /// <summary>
    /// For a <see cref="SnapshotKind.Boot"/> snapshot: the shape it boots (image version, kernel, agent, vCPUs,
    /// memory), unique among snapshots. Null for every other kind, and for a boot snapshot whose key was never
    /// recorded (a publish cut short), which nothing starts from.
    /// </summary>
    public string? BootKey { get; init; }
}

/// <summary>CRUD for snapshot rows; tags are unique (enforced by SQLite, reported as <see cref="TagTakenException"/>).</summary>
public sealed class SnapshotStore(CatalogDb db)
{
    private const string Columns =
        "id, tag, parent_id, source_sandbox_id, depth, kind, image, vcpus, memory_mib, memory_bytes, disk_bytes, pause_ms, dir, created_at, keep, boot_key";

    public async Task InsertAsync(SnapshotRecord r, CancellationToken ct)
    {
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"INSERT INTO snapshots ({Columns}) VALUES ($id, $tag, $parent, $source, $depth, $kind, $image, $vcpus, $mem, $membytes, $diskbytes, $pause, $dir, $created, $keep, $bootkey);";
        var p = cmd.Parameters;
        p.AddWithValue("$id", r.Id);
        p.AddWithValue("$tag", (object?)r.Tag ?? DBNull.Value);
        p.AddWithValue("$parent", (object?)r.ParentId ?? DBNull.Value);
        p.AddWithValue("$source", (object?)r.SourceSandboxId ?? DBNull.Value);
        p.AddWithValue("$depth", r.Depth);
        p.AddWithValue("$kind", r.Kind.ToName());
        p.AddWithValue("$image", r.Image);
        p.AddWithValue("$vcpus", r.Vcpus);
        p.AddWithValue("$mem", r.MemoryMiB);
        p.AddWithValue("$membytes", r.MemoryBytes);
        p.AddWithValue("$diskbytes", r.DiskBytes);
        p.AddWithValue("$pause", (object?)r.PauseMs ?? DBNull.Value);
        p.AddWithValue("$dir", r.Dir);
        p.AddWithValue("$created", SandboxStore.FormatTime(r.CreatedAt == default ? DateTimeOffset.UtcNow : r.CreatedAt));
        p.AddWithValue("$keep", r.Keep ? 1 : 0);
        p.AddWithValue("$bootkey", (object?)r.BootKey ?? DBNull.Value);
        try { await cmd.ExecuteNonQueryAsync(ct); }
        catch (SqliteException e) when (e.SqliteErrorCode == 19 && e.Message.Contains("tag", StringComparison.Ordinal))
        {
            throw new TagTakenException(r.Tag ?? "", e);
        }
    }

    public async Task<SnapshotRecord?> GetAsync(string id, CancellationToken ct) =>
        await QueryAsync("WHERE id = $k", id, ct) is [var row, ..] ? row : null;

    public async Task<SnapshotRecord?> GetByTagAsync(string tag, CancellationToken ct) =>
        await QueryAsync("WHERE tag = $k", tag, ct) is [var row, ..] ? row : null;

    /// <summary>The boot snapshot of a shape, if one is published.</summary>
    public async Task<SnapshotRecord?> GetByBootKeyAsync(string bootKey, CancellationToken ct) =>
        await QueryAsync("WHERE boot_key = $k", bootKey, ct) is [var row, ..] ? row : null;

    /// <summary>
    /// Records the shape key of a published boot snapshot (a capture publishes the row first, then this
    /// makes it findable), or clears it (null) to retire the snapshot. False when the snapshot is gone or
    /// another snapshot holds the key.
    /// </summary>
    public async Task<bool> SetBootKeyAsync(string id, string? bootKey, CancellationToken ct)
    {
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "UPDATE snapshots SET boot_key = $key WHERE id = $id;";
        cmd.Parameters.AddWithValue("$id", id);
        cmd.Parameters.AddWithValue("$key", (object?)bootKey ?? DBNull.Value);
        try { return await cmd.ExecuteNonQueryAsync(ct) > 0; }
        catch (SqliteException e) when (e.SqliteErrorCode == 19) { return false; }
    }

    /// <summary>All rows, oldest first.</summary>
    public Task<IReadOnlyList<SnapshotRecord>> ListAsync(CancellationToken ct) => QueryAsync("", null, ct);

    public async Task<bool> DeleteAsync(string id, CancellationToken ct)
    {
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "DELETE FROM snapshots WHERE id = $id;";
        cmd.Parameters.AddWithValue("$id", id);
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    private async Task<IReadOnlyList<SnapshotRecord>> QueryAsync(string where, string? key, CancellationToken ct)
    {
        await using var conn = db.Open();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM snapshots {where} ORDER BY created_at, id;";
        if (key is not null) cmd.Parameters.AddWithValue("$k", key);
        await using var x = await cmd.ExecuteReaderAsync(ct);
        var list = new List<SnapshotRecord>();
        while (await x.ReadAsync(ct))
            list.Add(new SnapshotRecord
            {
                Id = x.GetString(0),
                Tag = x.IsDBNull(1) ? null : x.GetString(1),
                ParentId = x.IsDBNull(2) ? null : x.GetString(2),
                SourceSandboxId = x.IsDBNull(3) ? null : x.GetString(3),
                Depth = x.GetInt32(4),
                Kind = CatalogNames.ParseSnapshotKind(x.GetString(5)),
                Image = x.GetString(6),
                Vcpus = x.GetInt32(7),
                MemoryMiB = x.GetInt32(8),
                MemoryBytes = x.GetInt64(9),
                DiskBytes = x.GetInt64(10),
                PauseMs = x.IsDBNull(11) ? null : x.GetInt64(11),
                Dir = x.GetString(12),
                CreatedAt = SandboxStore.ParseTime(x.GetString(13)),
                Keep = x.GetInt64(14) != 0,
                BootKey = x.IsDBNull(15) ? null : x.GetString(15),
            });
        return list;
    }
}

public sealed class TagTakenException(string tag, Exception inner)
    : Exception($"the tag '{tag}' is already used by another snapshot", inner)
{
    public string Tag { get; } = tag;
}
