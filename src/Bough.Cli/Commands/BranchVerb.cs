using System.CommandLine;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary><c>bough branch ID</c>: captures a running sandbox and starts children from it; prints their ids.</summary>
internal static class BranchVerb
{
    /// <summary>The daemon's ceiling; above it no per-child list is built (the daemon reports the error).</summary>
    private const int MaxChildren = 100;

    public static Command Build(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var count = NumericOptions.Integer("--count", "How many children to start (default 1)", "N", "-n");
        var tag = new Option<string?>("--tag") { Description = "Name for the snapshot (default: generated); a tagged snapshot is kept", HelpName = "TAG" };
        var keep = new Option<bool>("--keep") { Description = "Keep the snapshot after its children are gone (default: collected with its last user unless tagged)" };
        var env = new Option<string[]>("--env", "-e") { Description = "Environment for every child's execs (repeatable)", HelpName = "KEY=VALUE" };
        var json = new Option<bool>("--json") { Description = "Print the snapshot and the children as JSON" };
        var command = new Command("branch", "Capture a running sandbox and start children from the capture; prints the children's ids")
        {
            id, count, tag, keep, env, json,
        };
        var policy = new PolicyOptions();
        foreach (var o in policy.Lifetime.Concat(policy.Egress)) command.Options.Add(o);
        context.SetAction(command, async (parse, client, ct) =>
        {
            var n = parse.GetOptional(count);
            var childEnv = KeyValues.Parse("--env", parse.GetValue(env));
            List<BranchChild>? children = null;
            if (childEnv is not null && (n ?? 1) is >= 1 and <= MaxChildren)
                children = [.. Enumerable.Range(0, n ?? 1).Select(_ => new BranchChild { Env = childEnv })];

            var request = new BranchRequest
            {
                Count = n, Tag = parse.GetValue(tag), Keep = parse.GetValue(keep) ? true : null, Children = children,
                // Left out, the children keep the source's egress policy.
                Internet = policy.Internet(parse), Network = policy.Network(parse),
                TimeoutSeconds = policy.TimeoutSeconds(parse), OnTimeout = policy.OnTimeoutAction(parse),
            };
            var result = await client.BranchAsync(parse.GetValue(id)!, request, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(result);
                return ExitCodes.Ok;
            }
            foreach (var child in result.Children)
                context.Terminal.Out.WriteLine(child.Id);
            if (context.Terminal.StderrIsTerminal)
                context.Terminal.Err.WriteLine(SnapshotFormat.Captured(result.Snapshot, result.PauseMs));
            return ExitCodes.Ok;
        });
        return command;
    }
}
