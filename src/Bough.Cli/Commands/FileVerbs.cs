using System.CommandLine;
using System.Globalization;

namespace Bough.Cli.Commands;

/// <summary><c>bough files stat|mkdir|mv|ls|watch ID PATH</c>: guest file operations beyond <c>cp</c>.</summary>
internal static class FileVerbs
{
    public static Command Build(CliContext context)
    {
        var files = new Command("files", "Inspect and arrange files in a sandbox (copy with `bough cp`)");
        files.Subcommands.Add(Stat(context));
        files.Subcommands.Add(Mkdir(context));
        files.Subcommands.Add(Move(context));
        files.Subcommands.Add(List(context));
        files.Subcommands.Add(Watch(context));
        return files;
    }

    private static Command Stat(CliContext context)
    {
        var (id, path) = Args();
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var command = new Command("stat", "Show a path's metadata (symlinks not followed)") { id, path, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var e = await client.StatFileAsync(parse.GetValue(id)!, parse.GetValue(path)!, ct);
            if (parse.GetValue(json)) context.WriteJson(e);
            else
                context.WriteFields([
                    ("path", e.Path ?? e.Name), ("type", e.Type), ("size", e.Size.ToString(CultureInfo.InvariantCulture)),
                    ("mode", e.Permissions ?? Convert.ToString(e.Mode, 8)), ("owner", $"{e.Owner ?? "?"}:{e.Group ?? "?"}"),
                    ("modified", e.Mtime.ToString("u", CultureInfo.InvariantCulture)), .. e.Target is { } t ? [("target", t)] : Array.Empty<(string, string)>(),
                ]);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Mkdir(CliContext context)
    {
        var (id, path) = Args();
        var command = new Command("mkdir", "Create a directory and its parents (like mkdir -p)") { id, path };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var r = await client.MakeDirectoryAsync(parse.GetValue(id)!, parse.GetValue(path)!, ct);
            if (!r.Created) context.Terminal.Err.WriteLine($"{r.Path} already exists");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Move(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var source = new Argument<string>("source") { Description = "Absolute guest path" };
        var destination = new Argument<string>("destination") { Description = "Absolute guest path (replaced if a file or empty directory)" };
        var command = new Command("mv", "Rename a file or directory within a sandbox") { id, source, destination };
        context.SetAction(command, async (parse, client, ct) =>
        {
            await client.MoveFileAsync(parse.GetValue(id)!, parse.GetValue(source)!, parse.GetValue(destination)!, ct);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command List(CliContext context)
    {
        var (id, path) = Args();
        var depth = new Option<int>("--depth", "-d") { Description = "Levels to descend (1 = the directory's children)", DefaultValueFactory = _ => 1 };
        var command = new Command("ls", "List a directory in a sandbox") { id, path, depth };
        context.SetAction(command, async (parse, client, ct) =>
        {
            foreach (var e in await client.ListFilesAsync(parse.GetValue(id)!, parse.GetValue(path)!, parse.GetValue(depth), ct))
                context.Terminal.Out.WriteLine($"{e.Permissions ?? e.Type}\t{e.Size}\t{e.Path ?? e.Name}");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Watch(CliContext context)
    {
        var (id, path) = Args();
        var recursive = new Option<bool>("--recursive", "-r") { Description = "Also subdirectories" };
        var command = new Command("watch", "Print changes in a directory as they happen (Ctrl-C stops)") { id, path, recursive };
        context.SetAction(command, async (parse, client, ct) =>
        {
            await foreach (var e in client.WatchDirectoryAsync(parse.GetValue(id)!, parse.GetValue(path)!, parse.GetValue(recursive), ct))
            {
                if (e.Name is { } name)
                {
                    context.Terminal.Out.WriteLine($"{e.Type}\t{name}");
                    await context.Terminal.Out.FlushAsync(ct);
                }
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private static (Argument<string> Id, Argument<string> Path) Args() =>
        (new Argument<string>("id") { Description = "Sandbox id" }, new Argument<string>("path") { Description = "Absolute guest path" });
}
