namespace Bough.Network;

/// <summary>How the firewall is set up on this host.</summary>
public sealed class NftablesFirewallOptions
{
    /// <summary>The <c>inet</c> table Bough owns entirely (rebuilt whole on every change). Tests use their own.</summary>
    public string TableName { get; init; } = "bough";

    /// <summary>
    /// First uid of the range sandbox VMs run as. Every uid in the range gets the fixed rules, and a
    /// uid in it without a policy of its own may send nothing: a VM the firewall was not told about
    /// is contained too. Must match the range the engine allocates from.
    /// </summary>
    public int FirstVmUid { get; init; } = 1_900_000_000;

    /// <summary>How many uids the range holds.</summary>
    public int VmUidCount { get; init; } = 65_536;

    /// <summary>The <c>nft</c> executable (Debian package <c>nftables</c>).</summary>
    public string NftPath { get; init; } = "nft";

    /// <summary>Where the host's resolvers are read from at every rebuild.</summary>
    public string ResolvConfPath { get; init; } = "/etc/resolv.conf";

    /// <summary>Longest one <c>nft</c> run may take before it is killed and the change reported failed.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Last uid of the range.</summary>
    public int LastVmUid => checked(FirstVmUid + VmUidCount - 1);

    /// <summary>Throws when the options cannot describe a usable firewall.</summary>
    internal void Validate()
    {
        if (string.IsNullOrEmpty(TableName) || TableName.Length > 32
            || !TableName.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') || !char.IsAsciiLetterLower(TableName[0]))
            throw new ArgumentException($"table name '{TableName}' must be 1-32 of a-z, 0-9, _ and start with a letter", nameof(TableName));
        if (FirstVmUid < 1000 || VmUidCount < 1 || (long)FirstVmUid + VmUidCount - 1 > int.MaxValue)
            throw new ArgumentException($"VM uid range {FirstVmUid}+{VmUidCount} must start at 1000 or above and end below 2^31", nameof(FirstVmUid));
        if (CommandTimeout <= TimeSpan.Zero)
            throw new ArgumentException("the command timeout must be positive", nameof(CommandTimeout));
    }
}
