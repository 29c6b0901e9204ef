using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary><c>bough events</c>: follows the daemon's event stream, one line per event, until interrupted.</summary>
internal static class EventsVerb
{
    public static Command Build(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print each event as one line of JSON (NDJSON)" };
        var types = new Option<string[]>("--types")
        {
            Description = "Only these categories or types (sandbox, snapshot, sandbox.state, ...)", AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("events", "Follow sandbox and snapshot changes as they happen (Ctrl+C ends)") { json, types };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var filter = parse.GetValue(types)?.SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToList();
            await foreach (var e in client.EventsAsync(filter, ct))
            {
                context.Terminal.Out.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(e, BoughJson.Options) : Line(e));
                await context.Terminal.Out.FlushAsync(ct);
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Time, type, subject, then what changed: greppable and short.</summary>
    internal static string Line(BoughEvent e)
    {
        var time = e.Timestamp.UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        var what = e switch
        {
            { Sandbox: { } s } => $"{s.State}{(s.SnapshotId is { } from ? $" from={from}" : "")}{(s.StateReason is { } r ? $" ({r})" : "")}",
            { Snapshot: { } s } => $"kind={s.Kind}{(s.Tag is { } tag ? $" tag={tag}" : "")}{(s.ParentId is { } p ? $" parent={p}" : "")}" +
                                   $"{(s.SourceSandboxId is { } src ? $" source={src}" : "")} stored={s.MemoryBytes + s.DiskBytes}" +
                                   $"{(s.PauseMs is { } ms ? $" pause={ms}ms" : "")}",
            { Image: { } i } => ImageLine(i, e.Reason),
            { Type: EventTypes.Resync } => "events were dropped: list again",
            { Type: EventTypes.Ready } => "following changes from here on",
            _ => e.Reason ?? "",
        };
        return $"{time} {e.Sequence,6} {e.Type,-16} {e.Id ?? "-"} {what}".TrimEnd();
    }

    /// <summary>An image's state, then its phase and layer bytes while it runs, its digest when done, its error when failed.</summary>
    private static string ImageLine(Image i, string? reason)
    {
        var layers = i.Layers is { Count: > 0 } l
            ? $" layers={l.Count(x => x.State is "done" or "cached")}/{l.Count} bytes={l.Sum(x => x.Done)}/{l.Sum(x => x.Size)}"
            : "";
        return $"{i.State}{(i.Phase is { } p ? $" phase={p}" : "")}{layers}" +
               $"{(i.Digest is { } d && i.State == "ready" ? $" digest={d}" : "")}" +
               $"{(i.Error is { } err ? $" error={err.Code}: {err.Detail}" : "")}{(reason is { } r ? $" ({r})" : "")}";
    }
}
