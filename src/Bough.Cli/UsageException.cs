namespace Bough.Cli;

/// <summary>The command line is wrong in a way the parser cannot see (bad K=V, two guest paths...). Exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
