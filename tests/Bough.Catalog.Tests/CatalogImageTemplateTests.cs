using Bough.Catalog;
using Microsoft.Data.Sqlite;

namespace Bough.Catalog.Tests;

/// <summary>Migration 3 (images, templates, sandboxes.template) against a real SQLite file.</summary>
public sealed class CatalogImageTemplateTests : IDisposable
{
    private readonly TempDir _dir = new("catimg");
    private string DbPath => Path.Combine(_dir.Path, "bough.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    private async Task<CatalogDb> FreshAsync()
    {
        var db = new CatalogDb(DbPath);
        await db.MigrateAsync(CancellationToken.None);
        return db;
    }

    private static ImageRecord Image(string name, string id) => new()
    {
        Name = name, Id = id, Source = "registry", Digest = "sha256:" + new string('a', 64),
        DiskPath = $"/d/images/oci/{id}/disk.qcow2", Dir = $"/d/images/oci/{id}",
        ConfigJson = """{"env":["A=1"],"workingDir":"/app"}""", ContentBytes = 1234, DiskBytes = 5678,
        CreatedAt = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
    };

    [Fact]
    public async Task Migration3_upgrades_a_version2_catalog_keeping_its_rows()
    {
        var v2 = new CatalogDb(DbPath, CatalogMigrations.All.Take(2).ToList());
        await v2.MigrateAsync(CancellationToken.None);
        using (var conn = v2.Open())
        using (var cmd = conn.CreateCommand())
        {
            // A row as a version-2 daemon wrote it (no template column yet).
            cmd.CommandText = "INSERT INTO sandboxes (id, state, image, vcpus, memory_mib, created_at, updated_at, internet, accel, runtime_dir) " +
                              "VALUES ('sb-old', 'running', 'base', 1, 256, '2026-01-01T00:00:00.0000000Z', '2026-01-01T00:00:00.0000000Z', 1, 'tcg', '/x');";
            cmd.ExecuteNonQuery();
        }
        SqliteConnection.ClearAllPools();

        var db = await FreshAsync();
        Assert.Equal(CatalogMigrations.All[^1].Version, db.SchemaVersion);
        var old = await new SandboxStore(db).GetAsync("sb-old", CancellationToken.None);
        Assert.NotNull(old);
        Assert.Null(old!.Template);
        Assert.Empty(await new ImageStore(db).ListAsync(CancellationToken.None));
        Assert.Empty(await new TemplateStore(db).ListAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Images_round_trip_and_upsert_replaces_by_name()
    {
        var store = new ImageStore(await FreshAsync());
        var ct = CancellationToken.None;
        var first = Image("docker.io/library/busybox:latest", "img1");
        await store.UpsertAsync(first, ct);
        var stored = await store.GetAsync(first.Name, ct);
        Assert.NotNull(stored);
        Assert.Equal(first, stored with { PreviousIds = first.PreviousIds });
        var got = await store.GetAsync(first.Name, ct);
        Assert.Empty(got!.PreviousIds);

        // A re-pull with new content: new id, the old one kept as previous.
        await store.UpsertAsync(first with { Id = "img2", PreviousIds = ["img1"], Digest = "sha256:" + new string('b', 64) }, ct);
        var all = await store.ListAsync(ct);
        var only = Assert.Single(all);
        Assert.Equal("img2", only.Id);
        Assert.Equal(["img1"], only.PreviousIds);

        // Ids are unique across names.
        await Assert.ThrowsAsync<SqliteException>(() => store.UpsertAsync(Image("other", "img2"), ct));

        Assert.Null(await store.GetAsync("nope", ct));
        Assert.True(await store.DeleteAsync(first.Name, ct));
        Assert.False(await store.DeleteAsync(first.Name, ct));
    }

    [Fact]
    public async Task Templates_round_trip_unique_names_and_reference_a_snapshot()
    {
        var db = await FreshAsync();
        var ct = CancellationToken.None;
        await new SnapshotStore(db).InsertAsync(new SnapshotRecord
        {
            Id = "sn-1", Kind = SnapshotKind.Template, Image = "base", Dir = "/d/snapshots/sn-1", Depth = 1,
        }, ct);
        var store = new TemplateStore(db);
        var t = new TemplateRecord
        {
            Name = "web", Image = "base", SnapshotId = "sn-1", Vcpus = 2, MemoryMiB = 512,
            Start = ["/bin/busybox", "httpd", "-f"], Ready = ["true"],
            Env = new Dictionary<string, string> { ["K"] = "V" }, Ports = [8080], Internet = false, WarmupMs = 42,
            CreatedAt = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
        };
        await store.InsertAsync(t, ct);
        var got = await store.GetAsync("web", ct);
        Assert.NotNull(got);
        Assert.Equal(t.Start, got!.Start);
        Assert.Equal(t.Ready, got.Ready);
        Assert.Equal(t.Env, got.Env);
        Assert.Equal(t.Ports, got.Ports);
        Assert.False(got.Internet);
        Assert.Equal(42, got.WarmupMs);
        Assert.Equal(t.CreatedAt, got.CreatedAt);

        await Assert.ThrowsAsync<TemplateExistsException>(() => store.InsertAsync(t, ct));
        // The snapshot cannot go while the template names it.
        await Assert.ThrowsAsync<SqliteException>(() => new SnapshotStore(db).DeleteAsync("sn-1", ct));
        // Nor can a template name a snapshot that does not exist.
        await Assert.ThrowsAsync<SqliteException>(() => store.InsertAsync(t with { Name = "x", SnapshotId = "sn-missing" }, ct));

        var minimal = t with { Name = "min", Start = null, Ready = null };
        await store.InsertAsync(minimal, ct);
        Assert.Null((await store.GetAsync("min", ct))!.Start);
        Assert.Equal(["web", "min"], (await store.ListAsync(ct)).Select(x => x.Name).OrderByDescending(n => n).ToList());

        Assert.True(await store.DeleteAsync("web", ct));
        Assert.True(await store.DeleteAsync("min", ct));
        Assert.True(await new SnapshotStore(db).DeleteAsync("sn-1", ct));
    }

    [Fact]
    public async Task Sandbox_rows_keep_their_template()
    {
        var store = new SandboxStore(await FreshAsync());
        var ct = CancellationToken.None;
        var r = new SandboxRecord { Id = "sb-t", State = SandboxState.Running, Image = "base", Accel = "tcg", RuntimeDir = "/x", Template = "web" };
        await store.InsertAsync(r, ct);
        Assert.Equal("web", (await store.GetAsync("sb-t", ct))!.Template);
        await store.UpdateAsync((await store.GetAsync("sb-t", ct))! with { Template = null }, ct);
        Assert.Null((await store.GetAsync("sb-t", ct))!.Template);
    }
}
