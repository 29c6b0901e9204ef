using Bough.Contracts;
using Bough.Dashboard.Components.Snapshots;

namespace Bough.Dashboard.Tests;

public sealed class SnapshotLineageTests
{
    private static Snapshot Snap(string id, string? parent, long memory = 0, long disk = 0, int memoryMiB = 256) =>
        new() { Id = id, ParentId = parent, Kind = "branch", Image = "base", MemoryBytes = memory, DiskBytes = disk, MemoryMiB = memoryMiB };

    private static Sandbox Box(string id, string? snapshot) =>
        new(id, "running", "base", 1, 256, DateTimeOffset.UnixEpoch, new Dictionary<string, string>(), [], true, "tcg", SnapshotId: snapshot);

    // root ─ a ─ a1
    //      │   └ a2 ─ a2x
    //      └ b
    private static readonly Snapshot[] Family =
        [Snap("root", null, disk: 100), Snap("a", "root", disk: 10), Snap("b", "root"), Snap("a1", "a"), Snap("a2", "a", disk: 1), Snap("a2x", "a2")];

    [Fact]
    public void Ancestors_are_the_parent_chain_oldest_first()
    {
        var lineage = new SnapshotLineage(Family, []);
        Assert.Equal(["root", "a", "a2"], lineage.Ancestors(Family.Single(s => s.Id == "a2x")));
        Assert.Empty(lineage.Ancestors(Family[0]));
    }

    [Fact]
    public void A_cascade_removes_every_descendant_and_nothing_else()
    {
        var lineage = new SnapshotLineage(Family, []);
        Assert.Equal(["a1", "a2", "a2x"], lineage.Descendants("a").Select(s => s.Id).Order());
        Assert.Empty(lineage.Descendants("b"));
        Assert.Equal(5, lineage.Descendants("root").Count);
    }

    [Fact]
    public void Sandboxes_of_the_snapshot_or_a_descendant_block_its_delete()
    {
        var lineage = new SnapshotLineage(Family, [Box("sb-1", "a2x"), Box("sb-2", "b"), Box("sb-3", null)]);
        Assert.Equal(["sb-1"], lineage.SandboxesUsing("a").Select(b => b.Id));
        Assert.Equal(["sb-1", "sb-2"], lineage.SandboxesUsing("root").Select(b => b.Id).Order());
        Assert.Empty(lineage.SandboxesUsing("a1"));
    }

    [Fact]
    public void Logical_size_is_the_guest_memory_plus_the_chains_disk_layers()
    {
        var lineage = new SnapshotLineage(Family, []);
        var a2 = Family.Single(s => s.Id == "a2");
        Assert.Equal(256L * 1024 * 1024 + 1 + 10 + 100, lineage.LogicalBytes(a2));
        Assert.Equal(1, SnapshotLineage.StoredBytes(a2));
    }

    [Fact]
    public void A_parent_cycle_in_the_listing_does_not_loop()
    {
        var lineage = new SnapshotLineage([Snap("x", "y"), Snap("y", "x")], []);
        Assert.Equal(["y"], lineage.Ancestors(Snap("x", "y")));
        Assert.Equal(["y"], lineage.Descendants("x").Select(s => s.Id));
    }
}
