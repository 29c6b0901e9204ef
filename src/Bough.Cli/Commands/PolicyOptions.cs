using System.CommandLine;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>
/// The lifetime and egress options that create, branch, resume, <c>timeout</c> and <c>network</c> share, so each
/// reads the same on every verb.
/// </summary>
internal sealed class PolicyOptions
{
    public Option<int> Timeout { get; } = NumericOptions.Integer("--timeout",
        "Seconds until the sandbox's deadline (default: the daemon's, none unless configured)", "SECONDS");

    public Option<string?> OnTimeout { get; } = new("--on-timeout")
    {
        Description = "What the deadline does: kill (delete the sandbox, default) or pause",
        HelpName = "kill|pause",
    };

    public Option<string[]> AllowOut { get; } = new("--allow-out")
    {
        Description = "Reach only these IPv4 CIDRs/addresses (repeatable; the host and private ranges stay closed)",
        HelpName = "CIDR",
    };

    public Option<string[]> DenyOut { get; } = new("--deny-out")
    {
        Description = "Never reach these IPv4 CIDRs/addresses (repeatable)",
        HelpName = "CIDR",
    };

    public Option<bool> NoInternet { get; } = new("--no-internet") { Description = "No outbound network access" };

    /// <summary>The lifetime options (create, branch, resume).</summary>
    public IEnumerable<Option> Lifetime => [Timeout, OnTimeout];

    /// <summary>The egress options (create, branch).</summary>
    public IEnumerable<Option> Egress => [NoInternet, AllowOut, DenyOut];

    public int? TimeoutSeconds(ParseResult parse) => parse.GetOptional(Timeout);

    public string? OnTimeoutAction(ParseResult parse) => parse.GetValue(OnTimeout) switch
    {
        null => null,
        var a when a is TimeoutActions.Kill or TimeoutActions.Pause => a,
        var other => throw new UsageException($"--on-timeout must be kill or pause (got '{other}')"),
    };

    /// <summary>False with --no-internet; null leaves the daemon's default (or, for a branch, the source's).</summary>
    public bool? Internet(ParseResult parse) => parse.GetValue(NoInternet) ? false : null;

    /// <summary>The rules given, or null when neither list was.</summary>
    public NetworkRules? Network(ParseResult parse)
    {
        var (allow, deny) = (parse.GetValue(AllowOut), parse.GetValue(DenyOut));
        return allow is { Length: > 0 } || deny is { Length: > 0 }
            ? new NetworkRules { AllowOut = allow is { Length: > 0 } ? [.. allow] : null, DenyOut = deny is { Length: > 0 } ? [.. deny] : null }
            : null;
    }
}
