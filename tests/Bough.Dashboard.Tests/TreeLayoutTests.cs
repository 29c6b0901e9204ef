using Bough.Contracts;
using Bough.Dashboard.Components.Tree;

namespace Bough.Dashboard.Tests;

public sealed class TreeLayoutTests
{
    private static TreeNode Snap(string id, params TreeNode[] children) =>
        new() { Kind = "snapshot", Id = id, SnapshotKind = "branch", Children = children };

    private static TreeNode Box(string id) => new() { Kind = "sandbox", Id = id, State = "running" };

    private static readonly IReadOnlySet<string> None = new HashSet<string>();

    /// <summary>A random-ish lineage of <paramref name="count"/> nodes: snapshots with child snapshots and sandboxes.</summary>
    private static List<TreeNode> Forest(int count, int seed)
    {
        var random = new Random(seed);
        var made = 0;
        TreeNode Make(int depth)
        {
            var id = ++made;
            if (depth > 5 || made >= count || random.Next(3) == 0)
                return Box($"sb-{id}");
            var kids = new List<TreeNode>();
            var n = random.Next(1, 6);
            for (var i = 0; i < n && made < count; i++)
                kids.Add(Make(depth + 1));
            return new TreeNode { Kind = "snapshot", Id = $"sn-{id}", Children = kids };
        }
        var roots = new List<TreeNode>();
        while (made < count)
            roots.Add(Make(0));
        return roots;
    }

    [Theory]
    [InlineData(20, 1)]
    [InlineData(300, 2)]
    [InlineData(600, 3)]
    public void No_two_nodes_overlap_and_everything_fits_the_canvas(int count, int seed)
    {
        var drawing = TreeLayout.Layout(Forest(count, seed), None);
        foreach (var column in drawing.Nodes.GroupBy(n => n.X))
        {
            var ys = column.Select(n => n.Y).Order().ToList();
            for (var i = 1; i < ys.Count; i++)
                Assert.True(ys[i] - ys[i - 1] >= TreeLayout.NodeHeight, $"nodes at x={column.Key} overlap: y {ys[i - 1]} and {ys[i]}");
        }
        Assert.All(drawing.Nodes, n =>
        {
            Assert.InRange(n.X - TreeLayout.NodeWidth / 2, 0, drawing.Width);
            Assert.InRange(n.X + TreeLayout.NodeWidth / 2, 0, drawing.Width);
            Assert.InRange(n.Y - TreeLayout.NodeHeight / 2, 0, drawing.Height);
            Assert.InRange(n.Y + TreeLayout.NodeHeight / 2, 0, drawing.Height);
        });
        Assert.Equal(drawing.Nodes.Count, drawing.Nodes.Select(n => n.Key).Distinct().Count());
    }

    [Fact]
    public void A_parent_sits_centred_on_its_children_one_column_to_its_left()
    {
        var drawing = TreeLayout.Layout([Snap("root", Box("a"), Box("b"), Box("c"))], None);
        var root = drawing.Nodes.Single(n => n.Key == "snapshot:root");
        var kids = drawing.Nodes.Where(n => n.Node?.Kind == "sandbox").ToList();
        Assert.Equal(3, kids.Count);
        Assert.Equal((kids.Min(k => k.Y) + kids.Max(k => k.Y)) / 2, root.Y, 3);
        Assert.All(kids, k => Assert.Equal(root.X + TreeLayout.ColumnWidth, k.X, 3));
        Assert.Equal(3, drawing.Edges.Count);
    }

    [Fact]
    public void A_long_run_of_siblings_collapses_until_expanded()
    {
        var children = Enumerable.Range(0, 30).Select(i => Box($"sb-{i}")).ToArray();
        var roots = new[] { Snap("wide", children) };

        var collapsed = TreeLayout.Layout(roots, None);
        Assert.Equal(TreeLayout.ShownWhenCollapsed, collapsed.Nodes.Count(n => n.Node?.Kind == "sandbox"));
        var more = Assert.Single(collapsed.Nodes, n => n.Node is null);
        Assert.Equal(30 - TreeLayout.ShownWhenCollapsed, more.HiddenCount);
        Assert.Equal("snapshot:wide", more.ParentKey);

        var expanded = TreeLayout.Layout(roots, new HashSet<string> { "snapshot:wide" });
        Assert.Equal(30, expanded.Nodes.Count(n => n.Node?.Kind == "sandbox"));
        Assert.DoesNotContain(expanded.Nodes, n => n.Node is null);
    }

    [Fact]
    public void An_empty_lineage_is_an_empty_drawing()
    {
        var drawing = TreeLayout.Layout([], None);
        Assert.Empty(drawing.Nodes);
        Assert.Empty(drawing.Edges);
    }
}
