using System.CommandLine;
using System.Text.Json;
using Bough.Client;
using Bough.Contracts;
using Spectre.Console;

namespace Bough.Cli;

/// <summary>
/// What every command needs: the global <c>--url</c> and <c>--data-dir</c> options, the terminal,
/// and a uniform way to turn failures into the CLI's exit-code rules.
/// </summary>
internal sealed class CliContext
{
    public const string UrlVariable = DaemonAddress.Variable;

    /// <summary>Linux EPIPE; .NET reports the raw errno as the IOException's HResult.</summary>
    private const int BrokenPipeErrno = 32;

    public CliContext(Terminal terminal)
    {
        Terminal = terminal;
        Url = new Option<string>("--url")
        {
            Description = $"Daemon URL: http(s)://HOST:PORT or unix:/path.sock (default: ${UrlVariable}, else {BoughClient.DefaultUrl})",
            HelpName = "URL",
            Recursive = true,
        };
        DataDir = new Option<string?>("--data-dir")
        {
            Description = "Data directory (default: $BOUGH_HOME, else /var/lib/bough as root, else ~/.local/share/bough); " +
                          $"commands that talk to a daemon read its api-token there unless ${BoughToken.Variable} is set",
            HelpName = "DIR",
            Recursive = true,
        };
    }

    public Terminal Terminal { get; }

    public Option<string> Url { get; }

    /// <summary>The daemon's data directory: where <c>serve</c> keeps its state and clients find the token.</summary>
    public Option<string?> DataDir { get; }

    /// <summary>Indented wire JSON for <c>--json</c> output.</summary>
    public JsonSerializerOptions Json { get; } = new(BoughJson.Options) { WriteIndented = true };

    public void WriteJson<T>(T value) => Terminal.Out.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>
    /// Details as key/value pairs (the <c>show</c> commands): a grid at a terminal, plain
    /// <c>key: value</c> lines otherwise, for grep and scripts. <paramref name="markup"/> may style a
    /// value at the terminal (it gets the key and the already escaped value).
    /// </summary>
    public void WriteFields(IEnumerable<(string Key, string Value)> fields, Func<string, string, string>? markup = null)
    {
        if (Terminal.StdoutIsTerminal)
        {
            var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
            foreach (var (key, value) in fields)
            {
                var escaped = Markup.Escape(value);
                grid.AddRow($"[bold]{key}[/]", markup?.Invoke(key, escaped) ?? escaped);
            }
            Terminal.Ansi.Write(grid);
        }
        else
        {
            foreach (var (key, value) in fields)
                Terminal.Out.WriteLine($"{key}: {value}");
        }
    }

    /// <summary>
    /// Sets <paramref name="command"/>'s action: creates a client for the chosen URL, runs
    /// <paramref name="action"/>, and maps failures to exit codes (API error: 1, usage: 2,
    /// Ctrl+C: 130), each reported as one <c>error: ...</c> line.
    /// </summary>
    public void SetAction(Command command, Func<ParseResult, BoughClient, CancellationToken, Task<int>> action)
    {
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                using var client = new BoughClient(ResolveUrl(parse), BoughToken.Find(parse.GetValue(DataDir)));
                return await action(parse, client, ct);
            }
            catch (UsageException ex)
            {
                Terminal.Error(ex.Message);
                return ExitCodes.Usage;
            }
            catch (BoughApiException ex)
            {
                Terminal.Error(Describe(ex));
                return ExitCodes.Error;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return ExitCodes.Interrupted;
            }
            catch (IOException ex) when (ex.HResult == BrokenPipeErrno)
            {
                // Our reader went away (`bough cp ID:/f - | head`): stop quietly, as SIGPIPE would.
                return ExitCodes.BrokenPipe;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Host-side file problems (cp from a missing file, unwritable target): the
                // system's message already says what is wrong.
                Terminal.Error(ex.Message);
                return ExitCodes.Error;
            }
        });
    }

    /// <summary>The one-line message for an API failure, with the daemon's Retry-After when it sent one.</summary>
    public static string Describe(BoughApiException ex) =>
        ex.RetryAfter is { } wait
            ? $"{ex.Message}; try again in {Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds))} s"
            : ex.Message;

    private Uri ResolveUrl(ParseResult parse)
    {
        try
        {
            return DaemonAddress.Resolve(parse.GetValue(Url));
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }
    }
}
