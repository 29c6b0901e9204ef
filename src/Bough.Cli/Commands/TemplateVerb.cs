using System.CommandLine;
using System.Globalization;
using Bough.Client;
using Bough.Contracts;
using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough template create|ls|show|rm</c>: a template is a warmed-up snapshot (booted, service
/// started, ready check passed) that <c>bough create --template</c> forks in a fraction of a boot.
/// </summary>
internal static class TemplateVerb
{
    private static readonly string[] Headers = ["NAME", "IMAGE", "SNAPSHOT", "VCPUS", "MEMORY", "PORTS", "WARMUP", "CREATED"];

    public static Command Build(CliContext context)
    {
        var command = new Command("template", "Create, list, show and delete templates (warm snapshots to create sandboxes from)")
        {
            Create(context),
            List(context),
            Show(context),
            Remove(context),
        };
        command.Aliases.Add("templates");
        return command;
    }

    private static Command Create(CliContext context)
    {
        const string ArgvHelp = "one string, split into words as a shell would (quotes group words; no pipes, variables or globbing: for those use \"sh -c '...'\")";
        var name = new Argument<string>("name") { Description = "Template name" };
        var image = new Option<string>("--image") { Description = "Image to boot", HelpName = "IMAGE", Required = true };
        var start = new Option<string?>("--start")
        {
            Description = $"Command started in the background after boot, {ArgvHelp}; e.g. --start \"busybox httpd -f -p 8080\"",
            HelpName = "CMD",
        };
        var ready = new Option<string?>("--ready")
        {
            Description = $"Command run repeatedly until it exits 0, then the sandbox is snapshotted; {ArgvHelp}; e.g. --ready \"wget -q -O /dev/null http://127.0.0.1:8080/\"",
            HelpName = "CMD",
        };
        var timeout = NumericOptions.Number("--timeout", "Seconds to wait for --ready to succeed (default: the daemon's)", "SECONDS");
        var vcpus = NumericOptions.Integer("--vcpus", "Virtual CPUs of the template and its sandboxes", "N");
        var memory = NumericOptions.Integer("--memory", "Memory in MiB of the template and its sandboxes", "MiB");
        var env = new Option<string[]>("--env", "-e") { Description = "Environment for the start and ready commands and every exec (repeatable)", HelpName = "KEY=VALUE" };
        var ports = NumericOptions.Integers("--port", "Guest port each sandbox publishes on the host (repeatable)", "PORT", "-p");
        var noInternet = new Option<bool>("--no-internet") { Description = "No outbound network access" };
        var json = new Option<bool>("--json") { Description = "Print the template as JSON instead of its name" };
        var command = new Command("create", "Boot an image, run --start, wait for --ready, then snapshot it as a template; prints its name")
        {
            name, image, start, ready, timeout, vcpus, memory, env, ports, noInternet, json,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var portList = parse.GetValue(ports);
            var request = new CreateTemplateRequest
            {
                Name = parse.GetValue(name),
                Image = parse.GetValue(image),
                Start = SplitArgv("--start", parse.GetValue(start)),
                Ready = SplitArgv("--ready", parse.GetValue(ready)),
                ReadyTimeoutSeconds = parse.GetOptional(timeout),
                Vcpus = parse.GetOptional(vcpus),
                MemoryMiB = parse.GetOptional(memory),
                Env = KeyValues.Parse("--env", parse.GetValue(env)),
                Ports = portList is { Length: > 0 } ? [.. portList] : null,
                Internet = parse.GetValue(noInternet) ? false : null,
            };

            var template = await CreateWithStatusAsync(context, client, request, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(template);
                return ExitCodes.Ok;
            }
            context.Terminal.Out.WriteLine(template.Name);
            if (context.Terminal.StderrIsTerminal)
                context.Terminal.Err.WriteLine($"template {template.Name}: snapshot {template.SnapshotId}, warm-up {Warmup(template.WarmupMs)}");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>An empty or blank string is a usage error: the daemon would read [] as "no command" silently.</summary>
    private static List<string>? SplitArgv(string optionName, string? text)
    {
        if (text is null)
            return null;
        var argv = ShellWords.Split(optionName, text);
        return argv.Count > 0 ? argv : throw new UsageException($"{optionName} needs a command, got an empty string");
    }

    /// <summary>Creating waits for boot + start + ready (tens of seconds under TCG): a spinner says we are not stuck.</summary>
    private static Task<Template> CreateWithStatusAsync(CliContext context, BoughClient client, CreateTemplateRequest request, CancellationToken ct)
    {
        if (!context.Terminal.StderrIsTerminal)
            return client.CreateTemplateAsync(request, ct);
        return context.Terminal.AnsiErr.Status()
            .StartAsync(Markup.Escape($"creating template {request.Name}: boot, start, wait for ready..."),
                _ => client.CreateTemplateAsync(request, ct));
    }

    private static Command List(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print the list as JSON" };
        var command = new Command("ls", "List templates") { json };
        command.Aliases.Add("list");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var templates = (await client.ListTemplatesAsync(ct)).OrderBy(t => t.CreatedAt).ToList();
            if (parse.GetValue(json))
                context.WriteJson(templates);
            else if (context.Terminal.StdoutIsTerminal && templates.Count == 0)
                context.Terminal.Ansi.MarkupLine("[grey]no templates[/]");
            else if (context.Terminal.StdoutIsTerminal)
                TextTable.Write(context.Terminal.Ansi, Headers, templates.Select(t => Row(t).Select(Markup.Escape).ToArray()), "IMAGE", "PORTS");
            else
                TextTable.WritePlain(context.Terminal.Out, Headers, templates.Select(Row));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string[] Row(Template t) =>
    [
        t.Name, t.Image, t.SnapshotId, t.Vcpus.ToString(CultureInfo.InvariantCulture), SandboxFormat.Memory(t.MemoryMiB),
        t.Ports.Count == 0 ? "-" : string.Join(",", t.Ports), Warmup(t.WarmupMs), SandboxFormat.Created(t.CreatedAt),
    ];

    private static Command Show(CliContext context)
    {
        var name = new Argument<string>("name") { Description = "Template name" };
        var json = new Option<bool>("--json") { Description = "Print the template as JSON" };
        var command = new Command("show", "Show a template's settings") { name, json };
        command.Aliases.Add("inspect");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var template = await client.GetTemplateAsync(parse.GetValue(name)!, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(template);
                return ExitCodes.Ok;
            }
            context.WriteFields(Fields(template));
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Start and ready are shown shell-quoted, in the same form --start and --ready accept.</summary>
    private static List<(string Key, string Value)> Fields(Template t)
    {
        var fields = new List<(string, string)>
        {
            ("name", t.Name),
            ("image", t.Image),
            ("snapshot", t.SnapshotId),
            ("vcpus", t.Vcpus.ToString(CultureInfo.InvariantCulture)),
            ("memory", SandboxFormat.Memory(t.MemoryMiB)),
            ("start", t.Start is { Count: > 0 } start ? ShellWords.Join(start) : "-"),
            ("ready", t.Ready is { Count: > 0 } ready ? ShellWords.Join(ready) : "-"),
            ("ports", t.Ports.Count == 0 ? "-" : string.Join(", ", t.Ports)),
            ("internet", t.Internet ? "yes" : "no"),
        };
        if (t.Env.Count == 0)
            fields.Add(("env", "-"));
        foreach (var (key, value) in t.Env)
            fields.Add(("env", $"{key}={value}"));
        fields.Add(("warmup", Warmup(t.WarmupMs)));
        fields.Add(("created", SandboxFormat.Created(t.CreatedAt)));
        return fields;
    }

    private static Command Remove(CliContext context)
    {
        var names = new Argument<string[]>("name") { Description = "Template names", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Delete templates (refused while sandboxes created from one exist)") { names };
        command.Aliases.Add("remove");
        context.SetAction(command, async (parse, client, ct) =>
        {
            var exit = ExitCodes.Ok;
            foreach (var name in parse.GetValue(names)!)
            {
                try
                {
                    await client.DeleteTemplateAsync(name, ct);
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

    private static string Warmup(long ms) => (ms / 1000.0).ToString("0.0", CultureInfo.InvariantCulture) + " s";
}
