using Microsoft.Win32.SafeHandles;
using Spectre.Console;

namespace Bough.Cli;

/// <summary>
/// The process's standard streams, plus whether each is a terminal. Decorations (tables,
/// colour) are only for humans at a terminal; pipes get plain, stable text.
/// </summary>
internal sealed class Terminal
{
    private readonly Lazy<IAnsiConsole> _ansi;
    private readonly Lazy<IAnsiConsole> _ansiErr;

    public Terminal()
    {
        StdoutIsTerminal = !Console.IsOutputRedirected;
        StderrIsTerminal = !Console.IsErrorRedirected;
        ColorEnabled = string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        _ansi = new Lazy<IAnsiConsole>(() => AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = StdoutIsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = StdoutIsTerminal && ColorEnabled ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        }));
        _ansiErr = new Lazy<IAnsiConsole>(() => AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Error),
            Ansi = StderrIsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = StderrIsTerminal && ColorEnabled ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        }));
    }

    public bool StdoutIsTerminal { get; }
    public bool StderrIsTerminal { get; }
    public bool ColorEnabled { get; }

    /// <summary>Spectre console over stdout; only for rich output when <see cref="StdoutIsTerminal"/>.</summary>
    public IAnsiConsole Ansi => _ansi.Value;

    /// <summary>
    /// Spectre console over stderr; for live progress when <see cref="StderrIsTerminal"/>, so that
    /// stdout keeps only the result (<c>name=$(bough pull ...)</c> still shows progress).
    /// </summary>
    public IAnsiConsole AnsiErr => _ansiErr.Value;

    /// <summary>Text stdout, the writer the console had when this terminal was made.</summary>
    public TextWriter Out { get; } = Console.Out;
    public TextWriter Err { get; } = Console.Error;

    /// <summary>Raw stdout, for bytes that must pass through untouched (exec output, downloads).</summary>
    public static Stream OpenStdout() => OpenOutput(1, Console.OpenStandardOutput);
    public static Stream OpenStderr() => OpenOutput(2, Console.OpenStandardError);
    public static Stream OpenStdin() => Console.OpenStandardInput();

    /// <summary>
    /// Console.OpenStandardOutput() silently swallows EPIPE, so `bough exec ID -- yes | head`
    /// would never stop; a FileStream over the descriptor reports it. But a FileStream writes a
    /// seekable file with pwrite at its own offset, clobbering whatever else shares the
    /// descriptor (`cmd >log 2>&1`), so regular files keep the console stream (no EPIPE there).
    /// </summary>
    private static Stream OpenOutput(int fd, Func<Stream> console)
    {
        var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        if (!stream.CanSeek)
            return stream;
        stream.Dispose();
        return console();
    }

    /// <summary>
    /// Prints the one-line error every failure ends in. Written by hand rather than through
    /// Spectre, which would wrap a long message at 80 columns when stderr is not a terminal.
    /// </summary>
    public void Error(string message)
    {
        var line = "error: " + message.ReplaceLineEndings(" ");
        Err.WriteLine(StderrIsTerminal && ColorEnabled ? $"\u001b[31m{line}\u001b[0m" : line);
    }

    /// <summary>A warning that must not be missed (in bold yellow at a terminal).</summary>
    public void Warning(string message)
    {
        var line = "WARNING: " + message.ReplaceLineEndings(" ");
        Err.WriteLine(StderrIsTerminal && ColorEnabled ? $"\u001b[1;33m{line}\u001b[0m" : line);
    }
}
