using System.Runtime.CompilerServices;
using Bough.Protocol;

namespace Bough.AgentClient;

public sealed partial class AgentConnection
{
    public async Task<AgentHealth> HealthAsync(CancellationToken ct)
    {
        var h = (await RunAsync(new OpenRequest { Op = Ops.Health }, ct).ConfigureAwait(false)).Health!;
        return new AgentHealth(h.AgentVersion, h.ProtocolVersion, TimeSpan.FromMilliseconds(h.AgentUptimeMs),
            TimeSpan.FromMilliseconds(h.SystemUptimeMs), h.BootId, h.Hostname);
    }

    /// <summary>Applies hostname, clock, entropy and default env. The agent validates everything before applying anything.</summary>
    public async Task ConfigureAsync(GuestConfig config, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(config);
        var request = new ConfigureRequest
        {
            Hostname = config.Hostname,
            UnixTimeMs = config.UnixTimeMs,
            Entropy = config.Entropy,
            Env = config.Env == null ? null : new Dictionary<string, string>(config.Env),
            Cwd = config.Cwd,
            User = config.User,
        };
        await RunAsync(new OpenRequest { Op = Ops.Configure, Configure = request }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a command. Events arrive as the consumer pulls them; credit is returned to the agent only
    /// as they are consumed, so a slow consumer throttles the command instead of buffering. Cancelling
    /// <paramref name="ct"/> or disposing the enumerator early kills the command's process group.
    /// </summary>
    public async IAsyncEnumerable<ExecEvent> ExecAsync(ExecSpec spec, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Argv is not { Count: > 0 }) throw new ArgumentException("argv must not be empty", nameof(spec));
        if (spec.Stdin != null && spec.StdinBytes != null) throw new ArgumentException("set Stdin or StdinBytes, not both", nameof(spec));
        Stream? stdin = spec.Stdin ?? (spec.StdinBytes is { } bytes ? new ReadOnlyMemoryStream(bytes) : null);
        var request = new ExecRequest
        {
            Argv = [.. spec.Argv],
            Env = spec.Env == null ? null : new Dictionary<string, string>(spec.Env),
            Cwd = spec.Cwd,
            User = spec.User,
            TimeoutMs = spec.Timeout is { } t ? Math.Max(1, (long)Math.Ceiling(t.TotalMilliseconds)) : null,
            Stdin = stdin != null,
        };
        var s = await OpenAsync(new OpenRequest { Op = Ops.Exec, Exec = request }, ct).ConfigureAwait(false);
        using var pumpCts = new CancellationTokenSource();
        Task pump = stdin == null ? Task.CompletedTask : PumpAsync(s, stdin, pumpCts.Token);
        try
        {
            int pendingConsumed = 0;
            while (true)
            {
                if (pendingConsumed > 0) { Consumed(s, pendingConsumed); pendingConsumed = 0; }
                if (pump.IsFaulted && pump.Exception!.InnerException is not OperationCanceledException)
                    throw new AgentException(ErrorCodes.IoError, $"reading stdin failed: {pump.Exception.InnerException!.Message}");
                var item = await s.NextAsync(ct).ConfigureAwait(false);
                switch (item.Type)
                {
                    case FrameType.Reply:
                        Consumed(s, item.Data.Length);
                        break;
                    case FrameType.Data:
                        pendingConsumed = item.Data.Length;
                        yield return item.Channel == DataChannel.Stdout ? new ExecEvent.Stdout(item.Data) : new ExecEvent.Stderr(item.Data);
                        break;
                    case FrameType.End:
                        var x = ThrowIfError(item.End!).Exit!;
                        yield return new ExecEvent.Exit(x.ExitCode, x.Signal, x.TimedOut, x.DurationMs);
                        yield break;
                }
            }
        }
        finally
        {
            Abandon(s);
            pumpCts.Cancel();
            try { await pump.ConfigureAwait(false); } catch { /* stdin errors surface above or do not matter after exit */ }
            if (spec.Stdin == null) stdin?.Dispose();
        }
    }

    /// <summary>Streams <paramref name="content"/> to a temp file next to <paramref name="path"/> and renames it into place.</summary>
    public async Task WriteFileAsync(string path, Stream content, int? mode, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        await RunWithUploadAsync(new OpenRequest { Op = Ops.Write, Path = path, Mode = mode }, content, ct).ConfigureAwait(false);
    }

    /// <summary>Opens a guest file for streaming; throws (e.g. file_not_found) before any data.</summary>
    public async Task<AgentFileReader> OpenReadAsync(string path, CancellationToken ct)
    {
        var s = await OpenAsync(new OpenRequest { Op = Ops.Read, Path = path }, ct).ConfigureAwait(false);
        bool ok = false;
        try
        {
            var item = await s.NextAsync(ct).ConfigureAwait(false);
            if (item.Type == FrameType.End) ThrowIfError(item.End!);
            Consumed(s, item.Data.Length);
            var r = item.Reply!;
            ok = true;
            return new AgentFileReader(this, s, r.Size!.Value, r.Mode ?? 0, DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(r.MtimeMs ?? 0, 0, 253402300799999L)));
        }
        finally
        {
            if (!ok) Abandon(s);
        }
    }

    /// <summary>Collects an exec's output in memory; convenient for short commands.</summary>
    public async Task<(ExecEvent.Exit Exit, byte[] Stdout, byte[] Stderr)> RunToCompletionAsync(ExecSpec spec, CancellationToken ct)
    {
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        await foreach (var e in ExecAsync(spec, ct).ConfigureAwait(false))
        {
            switch (e)
            {
                case ExecEvent.Stdout o: stdout.Write(o.Data); break;
                case ExecEvent.Stderr r: stderr.Write(r.Data); break;
                case ExecEvent.Exit x: return (x, stdout.ToArray(), stderr.ToArray());
            }
        }
        throw new AgentException(ErrorCodes.AgentUnavailable, "exec ended without an exit");
    }

    internal sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> data) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, data.Length - _position);
            data.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => new(Read(buffer.Span));
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
