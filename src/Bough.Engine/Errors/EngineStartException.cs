namespace Bough.Engine;

/// <summary>
/// The engine cannot start safely on this host (its VM uid range is taken by another daemon, the host firewall cannot
/// be set up). The message says what to do; `bough serve` prints it and exits instead of serving uncontained VMs.
/// </summary>
public sealed class EngineStartException(string message, Exception? inner = null) : Exception(message, inner);
