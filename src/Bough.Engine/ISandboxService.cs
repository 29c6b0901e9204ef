using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// The sandbox lifecycle as the HTTP layer sees it. Every method validates its input and
/// reports failures as <see cref="BoughException"/> with a stable code; anything else
/// escaping is a bug (500).
/// </summary>
public interface ISandboxService
{
    Task<Sandbox> CreateAsync(CreateSandboxRequest request, CancellationToken ct);
    Task<IReadOnlyList<Sandbox>> ListAsync(CancellationToken ct);
    Task<Sandbox> GetAsync(string id, CancellationToken ct);
    Task DeleteAsync(string id, CancellationToken ct);

    /// <summary>Runs a command and buffers its output.</summary>
    Task<ExecResult> ExecAsync(string id, ExecCommand command, CancellationToken ct);

    /// <summary>Runs a command and yields output as it happens; the last item is the exit.</summary>
    IAsyncEnumerable<ExecOutput> ExecStreamAsync(string id, ExecCommand command, CancellationToken ct);

    /// <summary>Writes a file (creating parent directories) from a stream, in chunks.</summary>
    Task WriteFileAsync(string id, string path, Stream content, CancellationToken ct);

    /// <summary>Opens a guest file for reading; throws file_not_found before any byte is sent.</summary>
    Task<GuestFile> OpenFileAsync(string id, string path, CancellationToken ct);

    Task DeleteFileAsync(string id, string path, CancellationToken ct);
    Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string path, CancellationToken ct);

    /// <summary>The sandbox's serial console log (read-only stream over the log file).</summary>
    Task<Stream> OpenConsoleLogAsync(string id, CancellationToken ct);

    /// <summary>
    /// A TCP port on 127.0.0.1 that reaches <paramref name="guestPort"/> in the running sandbox: the port it
    /// publishes for it when it was created with one, else a forward added to its VM's user-mode network now.
    /// Such a forward lasts as long as that VM process (a pause, restore or daemon restart drops it), and every
    /// call adds one, so callers keep the answer per <see cref="Sandbox.Pid"/>.
    /// </summary>
    Task<int> ForwardPortAsync(string id, int guestPort, CancellationToken ct);

    EngineInfo Info { get; }
}

/// <summary>What to run: argv (empty: the image's Entrypoint + Cmd), extra environment, working directory, stdin, a timeout and the user.</summary>
public sealed record ExecCommand(
    IReadOnlyList<string> Argv,
    IReadOnlyDictionary<string, string>? Env = null,
    string? Cwd = null,
    ReadOnlyMemory<byte> Stdin = default,
    TimeSpan? Timeout = null,
    string? User = null);

public enum ExecOutputKind { Stdout, Stderr, Exit }

/// <summary>One piece of a streaming exec: a chunk of output or the final exit.</summary>
public sealed record ExecOutput(
    ExecOutputKind Kind,
    ReadOnlyMemory<byte> Data = default,
    int ExitCode = 0,
    int? Signal = null,
    bool TimedOut = false,
    long DurationMs = 0);

/// <summary>An open guest file: its size (when known) and a stream of its bytes.</summary>
public sealed class GuestFile(long? length, Stream content) : IAsyncDisposable
{
    public long? Length { get; } = length;
    public Stream Content { get; } = content;
    public ValueTask DisposeAsync() => Content.DisposeAsync();
}

public sealed record EngineInfo(string Accel, string AccelReason, string DataDir);
