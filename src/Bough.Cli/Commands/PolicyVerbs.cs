using System.CommandLine;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough timeout ID SECONDS</c> (a running sandbox's deadline) and <c>bough network ID ...</c> (its egress policy,
/// running or paused). Both print the sandbox's resulting setting.
/// </summary>
internal static class PolicyVerbs
{
    public static Command BuildTimeout(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var seconds = new Argument<int>("seconds") { Description = "The deadline, in seconds from now (extends or shortens it)" };
        var policy = new PolicyOptions();
        var json = new Option<bool>("--json") { Description = "Print the sandbox as JSON" };
        var command = new Command("timeout", "Set a running sandbox's deadline") { id, seconds, policy.OnTimeout, json };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var sandbox = await client.SetTimeoutAsync(parse.GetValue(id)!,
                new SetTimeoutRequest { Seconds = parse.GetValue(seconds), OnTimeout = policy.OnTimeoutAction(parse) }, ct);
            if (parse.GetValue(json)) context.WriteJson(sandbox);
            else context.Terminal.Out.WriteLine($"{sandbox.Id} ends at {sandbox.EndAt:u} ({sandbox.OnTimeout ?? TimeoutActions.Kill})");
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command BuildNetwork(CliContext context)
    {
        var id = new Argument<string>("id") { Description = "Sandbox id" };
        var policy = new PolicyOptions();
        var internet = new Option<bool>("--internet") { Description = "Turn outbound network access on" };
        var clearAllow = new Option<bool>("--clear-allow-out") { Description = "Remove the allow list (every public address reachable again)" };
        var clearDeny = new Option<bool>("--clear-deny-out") { Description = "Remove the deny list" };
        var json = new Option<bool>("--json") { Description = "Print the sandbox as JSON" };
        var command = new Command("network", "Change a sandbox's egress policy (what is left out stays); prints the policy in force")
        {
            id, internet, policy.NoInternet, policy.AllowOut, policy.DenyOut, clearAllow, clearDeny, json,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            if (parse.GetValue(internet) && parse.GetValue(policy.NoInternet))
                throw new UsageException("give --internet or --no-internet, not both");
            var rules = policy.Network(parse);
            if ((parse.GetValue(clearAllow) && rules?.AllowOut is not null) || (parse.GetValue(clearDeny) && rules?.DenyOut is not null))
                throw new UsageException("a list cannot be cleared and set at once");
            var request = new UpdateNetworkRequest
            {
                Internet = parse.GetValue(internet) ? true : policy.Internet(parse),
                AllowOut = parse.GetValue(clearAllow) ? [] : rules?.AllowOut,
                DenyOut = parse.GetValue(clearDeny) ? [] : rules?.DenyOut,
            };
            var sandbox = await client.UpdateNetworkAsync(parse.GetValue(id)!, request, ct);
            if (parse.GetValue(json))
            {
                context.WriteJson(sandbox);
                return ExitCodes.Ok;
            }
            var o = context.Terminal.Out;
            o.WriteLine($"internet  {(sandbox.Internet ? "on" : "off")}");
            o.WriteLine($"allowOut  {Join(sandbox.Network?.AllowOut)}");
            o.WriteLine($"denyOut   {Join(sandbox.Network?.DenyOut)}");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string Join(List<string>? cidrs) => cidrs is { Count: > 0 } ? string.Join(", ", cidrs) : "-";
}
