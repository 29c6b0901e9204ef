using Bough.Catalog;
using Microsoft.Data.Sqlite;

namespace Bough.Catalog.Tests;

/// <summary>The snapshot catalog against a real SQLite file with the built-in migrations.</summary>
public sealed class SnapshotStoreTests : IDisposable
{
    private readonly TempDir _dir = new("snapstore");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    private static SnapshotRecord Snap(string id, string? tag, string? parent = null, int depth = 1) => new()
    {
        Id = id, Tag = tag, ParentId = parent, SourceSandboxId = "sb-x", Depth = depth, Kind = SnapshotKind.Snapshot,
        Image = "base", Vcpus = 1, MemoryMiB = 256, MemoryBytes = 4096, DiskBytes = 8192, PauseMs = 12,
        Dir = "/data/snapshots/" + id, CreatedAt = DateTimeOffset.UtcNow,
    };

    [Fact]
    public async Task A_boot_key_names_at_most_one_snapshot_and_can_be_cleared()
    {
        var db = new CatalogDb(Path.Combine(_dir.Path, "bough.db"));
        await db.MigrateAsync(CancellationToken.None);
        var store = new SnapshotStore(db);
        await store.InsertAsync(Snap("sn-aaaaaaaaaaaa", "boot-a") with { Kind = SnapshotKind.Boot }, CancellationToken.None);
        await store.InsertAsync(Snap("sn-bbbbbbbbbbbb", "boot-b") with { Kind = SnapshotKind.Boot }, CancellationToken.None);
        Assert.Null((await store.GetAsync("sn-aaaaaaaaaaaa", CancellationToken.None))!.BootKey);

        Assert.True(await store.SetBootKeyAsync("sn-aaaaaaaaaaaa", "shape-1", CancellationToken.None));
        Assert.False(await store.SetBootKeyAsync("sn-bbbbbbbbbbbb", "shape-1", CancellationToken.None)); // taken
        Assert.False(await store.SetBootKeyAsync("sn-cccccccccccc", "shape-2", CancellationToken.None)); // no such row
        var found = await store.GetByBootKeyAsync("shape-1", CancellationToken.None);
        Assert.Equal(("sn-aaaaaaaaaaaa", SnapshotKind.Boot, "shape-1"), (found!.Id, found.Kind, found.BootKey));

        // Retired: the key is free for a new boot snapshot of the shape.
        Assert.True(await store.SetBootKeyAsync("sn-aaaaaaaaaaaa", null, CancellationToken.None));
        Assert.Null(await store.GetByBootKeyAsync("shape-1", CancellationToken.None));
        Assert.True(await store.SetBootKeyAsync("sn-bbbbbbbbbbbb", "shape-1", CancellationToken.None));
        Assert.Equal("boot", SnapshotKind.Boot.ToName());
    }

    [Fact]
    public async Task Round_trip_unique_tags_and_parent_links()
    {
        var db = new CatalogDb(Path.Combine(_dir.Path, "bough.db"));
        await db.MigrateAsync(CancellationToken.None);
        var store = new SnapshotStore(db);

        await store.InsertAsync(Snap("sn-aaaaaaaaaaaa", "first"), CancellationToken.None);
        await store.InsertAsync(Snap("sn-bbbbbbbbbbbb", "second", "sn-aaaaaaaaaaaa", 2), CancellationToken.None);

        var byTag = await store.GetByTagAsync("second", CancellationToken.None);
        Assert.NotNull(byTag);
        Assert.Equal("sn-aaaaaaaaaaaa", byTag!.ParentId);
        Assert.Equal(2, byTag.Depth);
        Assert.Equal(12, byTag.PauseMs);
        Assert.Equal(["sn-aaaaaaaaaaaa", "sn-bbbbbbbbbbbb"], (await store.ListAsync(CancellationToken.None)).Select(s => s.Id));

        // Tags are unique; a clash is reported as such and nothing is written.
        await Assert.ThrowsAsync<TagTakenException>(() => store.InsertAsync(Snap("sn-cccccccccccc", "first"), CancellationToken.None));
        Assert.Null(await store.GetAsync("sn-cccccccccccc", CancellationToken.None));

        // A parent cannot go while a child row points at it (foreign key).
        await Assert.ThrowsAsync<SqliteException>(() => store.DeleteAsync("sn-aaaaaaaaaaaa", CancellationToken.None));
        Assert.True(await store.DeleteAsync("sn-bbbbbbbbbbbb", CancellationToken.None));
        Assert.True(await store.DeleteAsync("sn-aaaaaaaaaaaa", CancellationToken.None));
        Assert.Empty(await store.ListAsync(CancellationToken.None));
    }
}
