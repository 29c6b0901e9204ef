using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using Bough.Cli;
using Bough.Cli.Commands;

var terminal = new Terminal();
var context = new CliContext(terminal);

var root = new RootCommand("Bough: self-hosted microVM sandboxes");
root.Options.Add(context.Url);
root.Options.Add(context.DataDir);
root.Subcommands.Add(CreateVerb.Build(context));
root.Subcommands.Add(ListVerb.Build(context));
root.Subcommands.Add(ShowVerb.Build(context));
root.Subcommands.Add(ExecVerb.Build(context));
root.Subcommands.Add(CopyVerb.Build(context));
root.Subcommands.Add(FileVerbs.Build(context));
root.Subcommands.Add(ProcessVerbs.BuildPs(context));
root.Subcommands.Add(ProcessVerbs.BuildAttach(context));
root.Subcommands.Add(ProcessVerbs.BuildKill(context));
root.Subcommands.Add(ShellVerb.Build(context));
root.Subcommands.Add(LogsVerb.Build(context));
root.Subcommands.Add(StatsVerb.Build(context));
root.Subcommands.Add(RemoveVerb.Build(context));
root.Subcommands.Add(PauseResumeVerbs.BuildPause(context));
root.Subcommands.Add(PauseResumeVerbs.BuildResume(context));
root.Subcommands.Add(PolicyVerbs.BuildTimeout(context));
root.Subcommands.Add(PolicyVerbs.BuildNetwork(context));
root.Subcommands.Add(SnapshotVerb.Build(context));
root.Subcommands.Add(BranchVerb.Build(context));
root.Subcommands.Add(SnapshotsVerb.Build(context));
root.Subcommands.Add(TreeVerb.Build(context));
root.Subcommands.Add(EventsVerb.Build(context));
root.Subcommands.Add(CompactVerb.Build(context));
root.Subcommands.Add(RemoveSnapshotVerb.Build(context));
root.Subcommands.Add(PullVerb.Build(context));
root.Subcommands.Add(ImagesVerb.Build(context));
root.Subcommands.Add(ImagesVerb.BuildRmi(context));
root.Subcommands.Add(TemplateVerb.Build(context));
root.Subcommands.Add(TokenVerb.Build(context));
root.Subcommands.Add(DashboardVerb.Build(context));
HostCommands.Register(root, context);

if (args.Length == 0)
{
    await root.Parse(["--help"]).InvokeAsync();
    return ExitCodes.Usage;
}

var parse = root.Parse(args);
if (parse.Action is ParseErrorAction)
{
    // System.CommandLine would print the errors plus the whole help text and exit 1; usage
    // errors get exit code 2 here, and one line each so they are not lost in the help.
    foreach (var error in parse.Errors)
        terminal.Error(error.Message);
    terminal.Err.WriteLine($"Run '{CommandPath(parse)} --help' for usage.");
    return ExitCodes.Usage;
}

// Ctrl+C / SIGTERM cancel the command's token; `serve` then shuts down gracefully (stopping
// its VMs), which can take longer than System.CommandLine's default grace of two seconds.
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromMinutes(2) });

static string CommandPath(ParseResult parse)
{
    var names = new List<string>();
    for (SymbolResult? r = parse.CommandResult; r is CommandResult c; r = c.Parent)
        names.Add(c.Command is RootCommand ? "bough" : c.Command.Name);
    names.Reverse();
    return string.Join(' ', names);
}
