using System.Text;
using Bough.AgentClient;

namespace Bough.Agent.Tests;

/// <summary>Reading attached process streams in tests: until some text shows up, or to the end.</summary>
internal sealed class ProcessReader(IAsyncEnumerable<ProcessEvent> events, TimeSpan timeout, bool keepText = true) : IAsyncDisposable
{
    private readonly CancellationTokenSource _timeout = new(timeout);
    private IAsyncEnumerator<ProcessEvent>? _enumerator;
    private readonly StringBuilder _text = new();

    public ProcessEvent.Started? Started { get; private set; }
    public ProcessEvent.Exited? Exited { get; private set; }
    public int Keepalives { get; private set; }
    /// <summary>Output bytes received (stdout, stderr or terminal).</summary>
    public long OutputBytes { get; private set; }
    public string Text => _text.ToString();
    public string Stderr { get; private set; } = "";

    private IAsyncEnumerator<ProcessEvent> Enumerator => _enumerator ??= events.GetAsyncEnumerator(_timeout.Token);

    /// <summary>Reads events until <paramref name="until"/> holds (checked after each event); false at the end of the stream.</summary>
    public async Task<bool> ReadUntilAsync(Func<ProcessReader, bool> until)
    {
        while (!until(this))
        {
            if (!await Enumerator.MoveNextAsync()) return false;
            switch (Enumerator.Current)
            {
                case ProcessEvent.Started s: Started = s; break;
                case ProcessEvent.Output o when !keepText: OutputBytes += o.Data.Length; break;
                case ProcessEvent.Output { Kind: ProcessOutputKind.Stderr } o: OutputBytes += o.Data.Length; Stderr += Encoding.UTF8.GetString(o.Data); break;
                case ProcessEvent.Output o: OutputBytes += o.Data.Length; _text.Append(Encoding.UTF8.GetString(o.Data)); break;
                case ProcessEvent.Keepalive: Keepalives++; break;
                case ProcessEvent.Exited x: Exited = x; break;
            }
        }
        return true;
    }

    public Task<bool> ReadUntilTextAsync(string text) => ReadUntilAsync(r => r.Text.Contains(text, StringComparison.Ordinal));

    public async Task<ProcessEvent.Exited> ReadToExitAsync()
    {
        await ReadUntilAsync(r => r.Exited != null);
        return Exited ?? throw new InvalidOperationException($"stream ended without an exit; output so far: {Text}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_enumerator != null) await _enumerator.DisposeAsync();
        _timeout.Dispose();
    }
}

internal static class ProcessTestExtensions
{
    public static ProcessReader Attach(this AgentConnection c, int pid, AttachOptions? options = null, int timeoutSeconds = 30) =>
        new(c.AttachProcessAsync(ProcessSelector.ByPid(pid), options, CancellationToken.None), TimeSpan.FromSeconds(timeoutSeconds));

    public static ProcessReader StartAttached(this AgentConnection c, ProcessSpec spec, AttachOptions? options = null, int timeoutSeconds = 30) =>
        new(c.StartProcessAttachedAsync(spec, options, CancellationToken.None), TimeSpan.FromSeconds(timeoutSeconds));

    public static Task<int> Start(this AgentConnection c, ProcessSpec spec) => c.StartProcessAsync(spec, ExecHelpers.Timeout(30));

    public static Task Input(this AgentConnection c, int pid, string text) =>
        c.SendProcessInputAsync(ProcessSelector.ByPid(pid), Encoding.UTF8.GetBytes(text), ExecHelpers.Timeout(30));

    public static ProcessSpec Sh(string script, bool stdin = false, string? tag = null) =>
        new() { Argv = ["sh", "-c", script], Stdin = stdin, Tag = tag };
}
