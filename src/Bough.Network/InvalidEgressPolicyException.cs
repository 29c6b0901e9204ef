namespace Bough.Network;

/// <summary>
/// An egress policy that cannot be installed as given (not an IPv4 CIDR, IPv6, host bits set, an
/// allowOut entry inside a range sandboxes can never reach, too many entries). A client error:
/// the message lists every problem, so one round trip fixes them all.
/// </summary>
public sealed class InvalidEgressPolicyException : Exception
{
    public InvalidEgressPolicyException() : this([]) { }
    public InvalidEgressPolicyException(string message) : this([message]) { }
    public InvalidEgressPolicyException(string message, Exception inner) : base(message, inner) => Problems = [message];

    /// <param name="problems">One sentence per bad entry.</param>
    public InvalidEgressPolicyException(IReadOnlyList<string> problems)
        : base(problems.Count == 0 ? "invalid egress policy" : "invalid egress policy: " + string.Join("; ", problems)) =>
        Problems = problems;

    /// <summary>Each problem found, one sentence each.</summary>
    public IReadOnlyList<string> Problems { get; }
}
