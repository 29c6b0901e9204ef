using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Bough.Catalog;

/// <summary>A template: a snapshot of a sandbox whose start command was up and its ready check passing.</summary>
public sealed record TemplateRecord
{
    public required string Name { get; init; }
    public required string Image { get; init; }
    public required string SnapshotId { get; init; }
    public int Vcpus { get; init; }
    public int MemoryMiB { get; init; }
    public IReadOnlyList<string>? Start { get; init; }
    public IReadOnlyList<string>? Ready { get; init; }
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<int> Ports { get; init; } = [];
    public bool Internet { get; init; } = true;
    public long WarmupMs { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>CRUD for template rows; names are unique (reported as <see cref="TemplateExistsException"/>).</summary>
public sealed class TemplateStore(CatalogDb db)
{
    private const string Columns =
        "name, image, snapshot_id, vcpus, memory_mib, start_json, ready_json, env_json, ports_json, internet, warmup_ms, created_at";

    private const int SqliteConstraintPrimaryKey = 1555;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <exception cref="TemplateExistsException">The name is taken.</exception>
    public async Task InsertAsync(TemplateRecord r, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(r);
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"INSERT INTO templates ({Columns}) VALUES " +
                          "($name, $image, $snap, $vcpus, $mem, $start, $ready, $env, $ports, $internet, $warmup, $created);";
        var p = cmd.Parameters;
        p.AddWithValue("$name", r.Name);
        p.AddWithValue("$image", r.Image);
        p.AddWithValue("$snap", r.SnapshotId);
        p.AddWithValue("$vcpus", r.Vcpus);
        p.AddWithValue("$mem", r.MemoryMiB);
        p.AddWithValue("$start", r.Start is null ? DBNull.Value : JsonSerializer.Serialize(r.Start, Json));
        p.AddWithValue("$ready", r.Ready is null ? DBNull.Value : JsonSerializer.Serialize(r.Ready, Json));
        p.AddWithValue("$env", JsonSerializer.Serialize(r.Env, Json));
        p.AddWithValue("$ports", JsonSerializer.Serialize(r.Ports, Json));
        p.AddWithValue("$internet", r.Internet ? 1 : 0);
        p.AddWithValue("$warmup", r.WarmupMs);
        p.AddWithValue("$created", SandboxStore.FormatTime(r.CreatedAt == default ? DateTimeOffset.UtcNow : r.CreatedAt));
        try { await cmd.ExecuteNonQueryAsync(ct); }
        catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteConstraintPrimaryKey)
        {
            throw new TemplateExistsException(r.Name, e);
        }
    }

    public async Task<TemplateRecord?> GetAsync(string name, CancellationToken ct) =>
        await QueryAsync("WHERE name = $k", name, ct) is [var row, ..] ? row : null;

    /// <summary>All rows, oldest first.</summary>
    public Task<IReadOnlyList<TemplateRecord>> ListAsync(CancellationToken ct) => QueryAsync("", null, ct);

    /// <returns>False when there was no such row.</returns>
    public async Task<bool> DeleteAsync(string name, CancellationToken ct)
    {
        await using var writer = await db.OpenWriterAsync(ct);
        var conn = writer.Connection;
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "DELETE FROM templates WHERE name = $name;";
        cmd.Parameters.AddWithValue("$name", name);
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    private async Task<IReadOnlyList<TemplateRecord>> QueryAsync(string where, string? key, CancellationToken ct)
    {
        await using var conn = db.Open();
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = $"SELECT {Columns} FROM templates {where} ORDER BY created_at, name;";
        if (key is not null) cmd.Parameters.AddWithValue("$k", key);
        await using var x = await cmd.ExecuteReaderAsync(ct);
        var list = new List<TemplateRecord>();
        while (await x.ReadAsync(ct))
            list.Add(new TemplateRecord
            {
                Name = x.GetString(0),
                Image = x.GetString(1),
                SnapshotId = x.GetString(2),
                Vcpus = x.GetInt32(3),
                MemoryMiB = x.GetInt32(4),
                Start = x.IsDBNull(5) ? null : JsonSerializer.Deserialize<List<string>>(x.GetString(5), Json),
                Ready = x.IsDBNull(6) ? null : JsonSerializer.Deserialize<List<string>>(x.GetString(6), Json),
                Env = JsonSerializer.Deserialize<Dictionary<string, string>>(x.GetString(7), Json) ?? [],
                Ports = JsonSerializer.Deserialize<List<int>>(x.GetString(8), Json) ?? [],
                Internet = x.GetInt64(9) != 0,
                WarmupMs = x.GetInt64(10),
                CreatedAt = SandboxStore.ParseTime(x.GetString(11)),
            });
        return list;
    }
}

/// <summary>A template with this name already exists.</summary>
public sealed class TemplateExistsException(string name, Exception inner)
    : Exception($"a template named '{name}' already exists", inner)
{
    public string Name { get; } = name;
}
