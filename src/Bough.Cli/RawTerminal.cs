using System.Diagnostics;
using System.Globalization;

namespace Bough.Cli;

/// <summary>
/// Puts the controlling terminal in raw mode (<c>stty raw -echo</c>) for an interactive session
/// and restores the saved settings exactly once: on dispose, on process exit, and on SIGTERM,
/// SIGHUP and SIGQUIT (in raw mode Ctrl-C is a byte for the remote side, not a signal to us).
/// A terminal left raw after a crash is unusable, hence the several paths.
/// </summary>
internal sealed class RawTerminal : IDisposable
{
    private readonly string _saved;
    private readonly Func<string[], string?> _stty;
    private readonly List<IDisposable> _signals = [];
    private int _restored;

    private RawTerminal(string saved, Func<string[], string?> stty)
    {
        _saved = saved;
        _stty = stty;
    }

    /// <summary>Enters raw mode, or returns null when there is no terminal (stdin redirected, no /dev/tty).</summary>
    public static RawTerminal? Enter() => Enter(Stty);

    /// <summary>As <see cref="Enter()"/> with the <c>stty</c> runner replaced (it gets the arguments and returns stdout, null on failure).</summary>
    internal static RawTerminal? Enter(Func<string[], string?> stty)
    {
        if (stty(["-g"])?.Trim() is not { Length: > 0 } saved)
            return null;
        var raw = new RawTerminal(saved, stty);
        AppDomain.CurrentDomain.ProcessExit += raw.OnProcessExit;
        foreach (var signal in new[] { System.Runtime.InteropServices.PosixSignal.SIGTERM, System.Runtime.InteropServices.PosixSignal.SIGHUP, System.Runtime.InteropServices.PosixSignal.SIGQUIT })
            raw._signals.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(signal, _ => raw.Restore()));
        if (stty(["raw", "-echo"]) is null)
        {
            raw.Dispose();
            return null;
        }
        return raw;
    }

    /// <summary>The terminal's size (cols, rows) per <c>stty size</c>, or null.</summary>
    public static (int Cols, int Rows)? Size() => Size(Stty);

    internal static (int Cols, int Rows)? Size(Func<string[], string?> stty)
    {
        var parts = stty(["size"])?.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts is [var r, var c]
               && int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out var rows)
               && int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var cols) && rows > 0 && cols > 0
            ? (cols, rows) : null;
    }

    /// <summary>Restores the saved settings; later calls do nothing.</summary>
    public void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) == 0)
            _stty([_saved]);
    }

    public void Dispose()
    {
        Restore();
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        foreach (var s in _signals)
            s.Dispose();
        _signals.Clear();
    }

    private void OnProcessExit(object? sender, EventArgs e) => Restore();

    /// <summary>Runs <c>stty -F /dev/tty ARGS</c>; null when it fails (no controlling terminal).</summary>
    private static string? Stty(string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo("stty") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("-F");
            psi.ArgumentList.Add("/dev/tty");
            foreach (var a in args)
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
