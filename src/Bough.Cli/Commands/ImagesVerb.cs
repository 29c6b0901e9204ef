using System.CommandLine;
using Bough.Client;
using Bough.Contracts;
using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough images</c>: lists images; its subcommands show, remove, import and build them.
/// <c>bough rmi</c> is the top-level alias of <c>images rm</c>, as in docker.
/// </summary>
internal static class ImagesVerb
{
    private static readonly string[] Headers = ["NAME", "SOURCE", "SIZE", "DIGEST", "CREATED"];

    public static Command Build(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print the list as JSON" };
        var command = new Command("images", "List images (subcommands: show, rm, import, build)")
        {
            json,
            Show(context),
            Remove(context, "rm", "Delete images (refused while sandboxes, snapshots or templates use one)"),
            Import(context),
            BuildRecipe(context),
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var images = await client.ListImagesAsync(ct);
            if (parse.GetValue(json))
                context.WriteJson(images);
            else if (context.Terminal.StdoutIsTerminal)
                WriteTable(context.Terminal.Ansi, images);
            else
                TextTable.WritePlain(context.Terminal.Out, Headers, images.Select(Row));
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary><c>bough rmi NAME...</c>.</summary>
    public static Command BuildRmi(CliContext context) => Remove(context, "rmi", "Delete images (same as `images rm`)");

    private static string[] Row(Image i) =>
    [
        i.Name,
        i.Source ?? "-",
        // An image still being pulled (or one whose pull failed) has no size yet; its state says why.
        i.State == ImageStates.Ready ? ImageFormat.Size(i) : $"({i.State})",
        ImageFormat.ShortDigest(i.Digest),
        i.CreatedAt is { } t ? SandboxFormat.Created(t) : "-",
    ];

    private static void WriteTable(IAnsiConsole console, IReadOnlyList<Image> images)
    {
        if (images.Count == 0)
        {
            console.MarkupLine("[grey]no images[/]");
            return;
        }
        // Registry names can be long; only NAME may wrap, ids and sizes stay whole.
        TextTable.Write(console, Headers, images.Select(i =>
        {
            var cells = Row(i).Select(Markup.Escape).ToArray();
            if (i.State != ImageStates.Ready)
                cells[2] = $"[{(i.State == ImageStates.Failed ? "red" : "yellow")}]{cells[2]}[/]";
            return cells;
        }), "NAME");
    }

    private static Command Show(CliContext context)
    {
        var name = new Argument<string>("name") { Description = "Image name, as `bough images` lists it" };
        var json = new Option<bool>("--json") { Description = "Print the image as JSON" };
        var command = new Command("show", "Show an image: digest, sizes and the defaults it gives execs (env, workdir, user, entrypoint, cmd)")
        {
            name, json,
        };
        command.Aliases.Add("inspect");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var image = await client.GetImageAsync(parse.GetValue(name)!, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(image);
                return ExitCodes.Ok;
            }
            context.WriteFields(Fields(image));
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Env is one field per variable, so values with commas or spaces read (and grep) unambiguously.</summary>
    private static List<(string Key, string Value)> Fields(Image i)
    {
        var fields = new List<(string, string)>
        {
            ("name", i.Name),
            ("state", i.State),
            ("source", i.Source ?? "-"),
            ("digest", i.Digest ?? "-"),
            ("size", ImageFormat.Sizes(i)),
            ("created", i.CreatedAt is { } t ? SandboxFormat.Created(t) : "-"),
        };
        if (i.Phase is { Length: > 0 } phase && i.State == ImageStates.Pulling)
            fields.Add(("phase", phase));
        foreach (var layer in i.Layers ?? [])
            fields.Add(("layer", $"{layer.Digest} {SnapshotFormat.Bytes(layer.Done)}/{SnapshotFormat.Bytes(layer.Size)} {layer.State}"));
        if (i.Error is { } error)
            fields.Add(("error", $"{error.Detail} ({error.Code})"));
        if (i.Config is { } config)
        {
            if (config.Env.Count == 0)
                fields.Add(("env", "-"));
            foreach (var variable in config.Env)
                fields.Add(("env", variable));
            fields.Add(("workdir", config.WorkingDir is { Length: > 0 } dir ? dir : "-"));
            fields.Add(("user", config.User is { Length: > 0 } user ? user : "-"));
            fields.Add(("entrypoint", ImageFormat.Argv(config.Entrypoint)));
            fields.Add(("cmd", ImageFormat.Argv(config.Cmd)));
        }
        return fields;
    }

    private static Command Remove(CliContext context, string verb, string description)
    {
        var names = new Argument<string[]>("name") { Description = "Image names", Arity = ArgumentArity.OneOrMore };
        var command = new Command(verb, description) { names };
        context.SetAction(command, async (parse, client, ct) =>
        {
            // Like rm-snapshot: carry on past a failure, report each, exit 1 if any failed.
            var exit = ExitCodes.Ok;
            foreach (var name in parse.GetValue(names)!)
            {
                try
                {
                    await client.DeleteImageAsync(name, ct);
                    context.Terminal.Out.WriteLine(name);
                }
                catch (BoughApiException ex)
                {
                    context.Terminal.Error(CliContext.Describe(ex));
                    exit = ExitCodes.Error;
                }
            }
            return exit;
        });
        return command;
    }

    private static Command Import(CliContext context)
    {
        var path = new Argument<string>("path")
        {
            Description = "OCI image layout directory or `docker save` tar, on the daemon's host (a relative path is taken from the current directory)",
        };
        var name = new Option<string?>("--name") { Description = "Name to publish under (default: the reference recorded in the archive)", HelpName = "NAME" };
        var diskSize = PullVerb.DiskSizeOption();
        var quiet = PullVerb.QuietOption();
        var json = PullVerb.JsonOption();
        var command = new Command("import", "Import an image from an OCI layout or docker-save archive; prints its name, digest and size")
        {
            path, name, diskSize, quiet, json,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var request = new ImportImageRequest
            {
                // The daemon reads the path, and its working directory is not ours.
                Path = System.IO.Path.GetFullPath(parse.GetValue(path)!),
                Name = parse.GetValue(name),
                DiskSizeMiB = parse.GetOptional(diskSize),
            };
            var started = await client.ImportImageAsync(request, async: true, ct);
            return await PullVerb.FinishAsync(context, client, started, parse.GetValue(quiet), parse.GetValue(json), ct);
        });
        return command;
    }

    private static Command BuildRecipe(CliContext context)
    {
        var recipe = new Argument<string>("recipe") { Description = "Built-in recipe: debian-python (Debian with Python 3)" };
        var name = new Option<string?>("--name") { Description = "Name to publish under (default: the recipe's name)", HelpName = "NAME" };
        var quiet = PullVerb.QuietOption();
        var json = PullVerb.JsonOption();
        var command = new Command("build", "Build an image from a built-in recipe; prints its name, digest and size")
        {
            recipe, name, quiet, json,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var started = await client.BuildImageAsync(parse.GetValue(recipe)!, parse.GetValue(name), async: true, ct);
            return await PullVerb.FinishAsync(context, client, started, parse.GetValue(quiet), parse.GetValue(json), ct);
        });
        return command;
    }
}
