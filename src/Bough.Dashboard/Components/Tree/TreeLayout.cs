using Bough.Contracts;

namespace Bough.Dashboard.Components.Tree;

/// <summary>One node placed on the canvas: its centre, and what it stands for.</summary>
/// <param name="Key">Unique on the canvas: the node's id, or <c>more:&lt;parent&gt;</c> for a collapsed run.</param>
/// <param name="Node">The lineage node (null for a collapsed run).</param>
/// <param name="HiddenCount">For a collapsed run: how many siblings it stands for.</param>
/// <param name="ParentKey">The node it hangs from, for expanding a collapsed run.</param>
public sealed record PlacedNode(string Key, TreeNode? Node, double X, double Y, int HiddenCount = 0, string? ParentKey = null);

/// <summary>A line from a parent's right edge to a child's left edge.</summary>
public sealed record PlacedEdge(double X1, double Y1, double X2, double Y2);

/// <summary>A laid-out lineage: nodes, edges and the canvas size they need.</summary>
public sealed record TreeDrawing(IReadOnlyList<PlacedNode> Nodes, IReadOnlyList<PlacedEdge> Edges, double Width, double Height);

/// <summary>
/// Lays the lineage out as a tidy tree that reads left to right: depth is the column, every leaf gets its own row
/// (so nothing overlaps, however wide a branch), and a parent sits centred on the rows of its children. A few
/// hundred nodes become a tall, narrow canvas that scrolls one way. Runs of more than <see cref="CollapseAbove"/>
/// siblings show their first <see cref="ShownWhenCollapsed"/> and one "more" node, unless expanded.
/// </summary>
public static class TreeLayout
{
    public const double NodeWidth = 188;
    public const double NodeHeight = 36;
    public const double ColumnWidth = 236;
    public const double RowHeight = 44;
    public const double Margin = 12;
    public const int CollapseAbove = 12;
    public const int ShownWhenCollapsed = 8;

    /// <summary>Places <paramref name="roots"/>; <paramref name="expanded"/> holds the keys of parents whose long runs show in full.</summary>
    public static TreeDrawing Layout(IReadOnlyList<TreeNode> roots, IReadOnlySet<string> expanded)
    {
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentNullException.ThrowIfNull(expanded);
        var state = new LayoutState(expanded);
        foreach (var root in roots)
            state.Place(root, depth: 0);
        var columns = state.Nodes.Count == 0 ? 0 : state.MaxDepth + 1;
        return new TreeDrawing(state.Nodes, state.Edges,
            Width: Margin * 2 + Math.Max(0, columns - 1) * ColumnWidth + NodeWidth,
            Height: Margin * 2 + Math.Max(1, state.Rows) * RowHeight);
    }

    /// <summary>The walk's running state: the next free row and what has been placed.</summary>
    private sealed class LayoutState(IReadOnlySet<string> expanded)
    {
        public List<PlacedNode> Nodes { get; } = [];
        public List<PlacedEdge> Edges { get; } = [];
        public int Rows { get; private set; }
        public int MaxDepth { get; private set; }
        private readonly HashSet<string> _placed = new(StringComparer.Ordinal);

        /// <summary>Places <paramref name="node"/> and its subtree; returns the row (fractional when centred) it sits on.</summary>
        public double Place(TreeNode node, int depth)
        {
            MaxDepth = Math.Max(MaxDepth, depth);
            var key = node.Kind + ":" + node.Id;
            var x = Margin + depth * ColumnWidth + NodeWidth / 2;
            if (!_placed.Add(key) || node.Children.Count == 0)
                return Add(new PlacedNode(key, node, x, Y(Rows)), Rows++);

            var children = node.Children;
            var collapsed = children.Count > CollapseAbove && !expanded.Contains(key);
            var shown = collapsed ? children.Take(ShownWhenCollapsed).ToList() : children;
            var childRows = new List<(double Row, double X)>();
            foreach (var child in shown)
                childRows.Add((Place(child, depth + 1), Margin + (depth + 1) * ColumnWidth + NodeWidth / 2));
            if (collapsed)
            {
                var moreX = Margin + (depth + 1) * ColumnWidth + NodeWidth / 2;
                var row = Rows++;
                Nodes.Add(new PlacedNode("more:" + key, null, moreX, Y(row), children.Count - shown.Count, key));
                childRows.Add((row, moreX));
                MaxDepth = Math.Max(MaxDepth, depth + 1);
            }
            var mine = (childRows[0].Row + childRows[^1].Row) / 2;
            foreach (var (row, childX) in childRows)
                Edges.Add(new PlacedEdge(x + NodeWidth / 2, Y(mine), childX - NodeWidth / 2, Y(row)));
            return Add(new PlacedNode(key, node, x, Y(mine)), mine);
        }

        private double Add(PlacedNode placed, double row)
        {
            Nodes.Add(placed);
            return row;
        }

        private static double Y(double row) => Margin + row * RowHeight + RowHeight / 2;
    }
}
