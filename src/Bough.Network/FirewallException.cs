namespace Bough.Network;

/// <summary>
/// The host firewall could not be changed: <c>nft</c> is missing, the kernel refused the rules, or
/// the command failed. The previous rules are still in force (every change is one nftables
/// transaction), so sandboxes stay contained.
/// </summary>
public sealed class FirewallException : Exception
{
    public FirewallException() { }
    public FirewallException(string message) : base(message) { }
    public FirewallException(string message, Exception inner) : base(message, inner) { }
}
