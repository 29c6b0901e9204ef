using System.CommandLine;
using Bough.Contracts;
using Spectre.Console;
using TreeNode = Bough.Contracts.TreeNode;

namespace Bough.Cli.Commands;

/// <summary><c>bough tree</c>: snapshots with the snapshots and sandboxes that descend from them.</summary>
internal static class TreeVerb
{
    private const string SandboxKind = "sandbox";

    public static Command Build(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print the tree as JSON" };
        var command = new Command("tree", "Show the lineage of snapshots and sandboxes") { json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var tree = await client.GetTreeAsync(ct);
            if (parse.GetValue(json))
                context.WriteJson(tree);
            else if (context.Terminal.StdoutIsTerminal)
                WriteTree(context.Terminal.Ansi, tree);
            else
                WritePlain(context.Terminal.Out, tree.Roots, 0);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void WriteTree(IAnsiConsole console, LineageTree tree)
    {
        if (tree.Roots.Count == 0)
        {
            console.MarkupLine("[grey]no snapshots[/]");
            return;
        }
        foreach (var root in tree.Roots)
        {
            var t = new Tree(Label(root)).Guide(TreeGuide.Line);
            AddChildren(t, root);
            console.Write(t);
        }
    }

    private static void AddChildren(IHasTreeNodes parent, TreeNode node)
    {
        foreach (var child in node.Children)
            AddChildren(parent.AddNode(Label(child)), child);
    }

    private static Markup Label(TreeNode n)
    {
        if (n.Kind == SandboxKind)
        {
            var state = n.State ?? "?";
            return new Markup($"{Markup.Escape(n.Id)} [{SandboxFormat.StateColor(state)}]{Markup.Escape(state)}[/]");
        }
        var tag = string.IsNullOrEmpty(n.Tag) ? "" : $" [grey]({Markup.Escape(n.Tag)})[/]";
        return new Markup($"[bold]{Markup.Escape(n.Id)}[/]{tag}");
    }

    /// <summary>Two spaces per level; "ID (tag)" for snapshots, "ID state" for sandboxes.</summary>
    private static void WritePlain(TextWriter output, IReadOnlyList<TreeNode> nodes, int depth)
    {
        foreach (var n in nodes)
        {
            var detail = n.Kind == SandboxKind
                ? " " + (n.State ?? "?")
                : string.IsNullOrEmpty(n.Tag) ? "" : $" ({n.Tag})";
            output.WriteLine($"{new string(' ', depth * 2)}{n.Id}{detail}");
            WritePlain(output, n.Children, depth + 1);
        }
    }
}
