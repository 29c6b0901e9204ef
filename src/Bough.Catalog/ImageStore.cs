using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Bough.Catalog;

/// <summary>
/// One published (ready) image. Images being pulled or that failed are never in the catalog:
/// a row means the directory at <see cref="Dir"/> is complete.
/// </summary>
public sealed record ImageRecord
{
    /// <summary>Canonical name (normalised reference, or a recipe/import name).</summary>
    public required string Name { get; init; }
    /// <summary>The published directory's id (<c>images/oci/&lt;id&gt;</c>); changes when a tag is re-pulled with new content.</summary>
    public required string Id { get; init; }
    /// <summary>"registry", "archive" or "recipe".</summary>
    public required string Source { get; init; }
    public string? Digest { get; init; }
    public required string DiskPath { get; init; }
    public required string Dir { get; init; }
    /// <summary>The image's exec defaults as JSON; the catalog stores it opaquely.</summary>
    public string ConfigJson { get; init; } = "{}";
    public long ContentBytes { get; init; }
    public long DiskBytes { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>Older published ids of this name, kept because sandbox overlays may be backed by them.</summary>
    public IReadOnlyList<string> PreviousIds { get; init; } = [];
}

/// <summary>CRUD for image rows, keyed by name.</summary>
public sealed class ImageStore(CatalogDb db)
{
    private const string Columns =
        "name, id, source, digest, disk_path, dir, config_json, content_bytes, disk_bytes, created_at, previous_ids_json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Inserts a row, or replaces the row of the same name (a re-pull that changed the content).</summary>
    public async Task UpsertAsync(ImageRecord r, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(r);
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        // ON CONFLICT(name), not INSERT OR REPLACE: the latter would also silently drop another
        // image's row whose id collided.
        cmd.CommandText = $"INSERT INTO images ({Columns}) VALUES " +
                          "($name, $id, $source, $digest, $disk, $dir, $config, $content, $diskbytes, $created, $prev) " +
                          "ON CONFLICT(name) DO UPDATE SET id = excluded.id, source = excluded.source, digest = excluded.digest, " +
                          "disk_path = excluded.disk_path, dir = excluded.dir, config_json = excluded.config_json, " +
                          "content_bytes = excluded.content_bytes, disk_bytes = excluded.disk_bytes, " +
                          "created_at = excluded.created_at, previous_ids_json = excluded.previous_ids_json;";
        var p = cmd.Parameters;
        p.AddWithValue("$name", r.Name);
        p.AddWithValue("$id", r.Id);
        p.AddWithValue("$source", r.Source);
        p.AddWithValue("$digest", (object?)r.Digest ?? DBNull.Value);
        p.AddWithValue("$disk", r.DiskPath);
        p.AddWithValue("$dir", r.Dir);
        p.AddWithValue("$config", r.ConfigJson);
        p.AddWithValue("$content", r.ContentBytes);
        p.AddWithValue("$diskbytes", r.DiskBytes);
        p.AddWithValue("$created", SandboxStore.FormatTime(r.CreatedAt == default ? DateTimeOffset.UtcNow : r.CreatedAt));
        p.AddWithValue("$prev", JsonSerializer.Serialize(r.PreviousIds, Json));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<ImageRecord?> GetAsync(string name, CancellationToken ct)
    {
        await using var conn = db.Open();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM images WHERE name = $name;";
        cmd.Parameters.AddWithValue("$name", name);
        await using var x = await cmd.ExecuteReaderAsync(ct);
        return await x.ReadAsync(ct) ? Read(x) : null;
    }

    /// <summary>All rows, oldest first.</summary>
    public async Task<IReadOnlyList<ImageRecord>> ListAsync(CancellationToken ct)
    {
        await using var conn = db.Open();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM images ORDER BY created_at, name;";
        await using var x = await cmd.ExecuteReaderAsync(ct);
        var list = new List<ImageRecord>();
        while (await x.ReadAsync(ct)) list.Add(Read(x));
        return list;
    }

    /// <returns>False when there was no such row.</returns>
    public async Task<bool> DeleteAsync(string name, CancellationToken ct)
    {
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "DELETE FROM images WHERE name = $name;";
        cmd.Parameters.AddWithValue("$name", name);
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    private static ImageRecord Read(SqliteDataReader x) => new()
    {
        Name = x.GetString(0),
        Id = x.GetString(1),
        Source = x.GetString(2),
        Digest = x.IsDBNull(3) ? null : x.GetString(3),
        DiskPath = x.GetString(4),
        Dir = x.GetString(5),
        ConfigJson = x.GetString(6),
        ContentBytes = x.GetInt64(7),
        DiskBytes = x.GetInt64(8),
        CreatedAt = SandboxStore.ParseTime(x.GetString(9)),
        PreviousIds = JsonSerializer.Deserialize<List<string>>(x.GetString(10), Json) ?? [],
    };
}
