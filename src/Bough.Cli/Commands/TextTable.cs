using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary>The two shapes of a listing: a borderless table for a terminal, aligned plain text for pipes.</summary>
internal static class TextTable
{
    /// <summary>
    /// Borderless and tightly padded. Only the columns named in <paramref name="wrappable"/> may
    /// wrap, since a split id or timestamp can't be copied or read at a glance.
    /// </summary>
    /// <param name="markup">Per row, the cells as Spectre markup (already escaped).</param>
    public static void Write(IAnsiConsole console, string[] headers, IEnumerable<string[]> markup, params string[] wrappable)
    {
        var table = new Table().Border(TableBorder.None);
        foreach (var h in headers)
        {
            var column = new TableColumn($"[bold]{h}[/]").PadLeft(0).PadRight(2);
            table.AddColumn(wrappable.Contains(h) ? column : column.NoWrap());
        }
        foreach (var cells in markup)
            table.AddRow(cells);
        console.Write(table);
    }

    /// <summary>The width of <see cref="WritePlain"/>'s longest line: what a table needs to fit unwrapped.</summary>
    public static int PlainWidth(string[] headers, IReadOnlyList<string[]> rows) =>
        Widths(headers, rows).Sum() + 2 * (headers.Length - 1);

    /// <summary>Space-aligned columns with a header, stable for awk/cut; no colour, no wrapping.</summary>
    public static void WritePlain(TextWriter output, string[] headers, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { headers };
        all.AddRange(rows);
        var widths = Widths(headers, all);
        foreach (var row in all)
        {
            var cells = row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]));
            output.WriteLine(string.Join("  ", cells).TrimEnd());
        }
    }

    private static int[] Widths(string[] headers, IReadOnlyList<string[]> rows) =>
        Enumerable.Range(0, headers.Length).Select(i => rows.Select(r => r[i].Length).Append(headers[i].Length).Max()).ToArray();
}
