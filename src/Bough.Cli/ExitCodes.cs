namespace Bough.Cli;

/// <summary>The CLI's own exit codes; <c>exec</c> otherwise passes the command's code through.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The daemon reported an error, or it could not be reached.</summary>
    public const int Error = 1;
    /// <summary>The command line itself is wrong.</summary>
    public const int Usage = 2;
    /// <summary>An exec hit its timeout (as coreutils timeout(1)).</summary>
    public const int TimedOut = 124;
    /// <summary>Added to a signal number, as shells report signalled processes.</summary>
    public const int SignalBase = 128;
    /// <summary>Interrupted with Ctrl+C (128 + SIGINT).</summary>
    public const int Interrupted = 130;
    /// <summary>Our stdout was closed under us, e.g. piped into head (128 + SIGPIPE).</summary>
    public const int BrokenPipe = 141;
}
