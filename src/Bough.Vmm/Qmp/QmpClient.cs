using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Bough.Vmm;

/// <summary>
/// Client for the QEMU Machine Protocol over a Unix socket. Commands carry an <c>id</c> so
/// replies are matched even when events interleave; a single background loop owns all reads.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private const int EventBufferCapacity = 1024;
    private static readonly TimeSpan DefaultGreetingTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, PendingCommand> _pending = new();
    private readonly Channel<QmpEvent> _events = Channel.CreateBounded<QmpEvent>(
        new BoundedChannelOptions(EventBufferCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true });
    private readonly List<Channel<QmpEvent>> _subscribers = [];
    private readonly TaskCompletionSource _disconnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _shutdown = new();
    private long _nextId;
    private Task? _readLoop;
    private StreamReader? _reader;

    private sealed record PendingCommand(string Command, TaskCompletionSource<JsonElement> Completion);

    private QmpClient(Socket socket, ILogger logger)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _logger = logger;
    }

    /// <summary>
    /// Events in arrival order. Bounded (oldest dropped when nobody reads) so an unread channel
    /// cannot grow without limit over a VM's lifetime. Completed when the connection ends.
    /// For an independent stream (e.g. waiting for one event without stealing it) use <see cref="SubscribeEvents"/>.
    /// </summary>
    public ChannelReader<QmpEvent> Events => _events.Reader;

    /// <summary>Completes (never faults) when the connection is closed by either side.</summary>
    public Task Disconnected => _disconnected.Task;

    /// <summary>The QMP greeting's version/capabilities object.</summary>
    public JsonElement Greeting { get; private set; }

    /// <summary>
    /// Connects, reads the greeting and negotiates capabilities. Throws on timeout/cancellation
    /// rather than hanging: a QMP server that already has a client accepts the connection but
    /// never greets.
    /// </summary>
    public static Task<QmpClient> ConnectAsync(string socketPath, ILogger logger, CancellationToken ct) =>
        ConnectAsync(socketPath, logger, DefaultGreetingTimeout, ct);

    public static async Task<QmpClient> ConnectAsync(string socketPath, ILogger logger, TimeSpan timeout, CancellationToken ct)
    {
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeoutCts.CancelAfter(timeout);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        QmpClient? client = null;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeoutCts.Token).ConfigureAwait(false);
            client = new QmpClient(socket, logger);
            await client.HandshakeAsync(timeoutCts.Token).ConfigureAwait(false);
            return client;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await DisposeQuietly(client, socket).ConfigureAwait(false);
            throw new TimeoutException($"QMP handshake on '{socketPath}' did not complete within {timeout.TotalSeconds:0.#}s " +
                                       "(is another client connected?).");
        }
        catch
        {
            await DisposeQuietly(client, socket).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task DisposeQuietly(QmpClient? client, Socket socket)
    {
        if (client is not null) await client.DisposeAsync().ConfigureAwait(false);
        else socket.Dispose();
    }

    private async Task HandshakeAsync(CancellationToken ct)
    {
        _reader = new StreamReader(_stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 16 * 1024, leaveOpen: true);
        string? line = await _reader.ReadLineAsync(ct).ConfigureAwait(false)
                       ?? throw new QmpDisconnectedException("QMP socket closed before the greeting.");
        using (var doc = JsonDocument.Parse(line))
        {
            if (!doc.RootElement.TryGetProperty("QMP", out var qmp))
                throw new InvalidDataException($"Unexpected QMP greeting: {line}");
            Greeting = qmp.Clone();
        }
        _readLoop = Task.Run(ReadLoopAsync, CancellationToken.None);
        await ExecuteAsync("qmp_capabilities", null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a QMP command and returns its <c>return</c> value. Prefer the typed commands (<see cref="QmpCommands"/>):
    /// internal, so every caller outside Bough.Vmm goes through them.
    /// </summary>
    /// <exception cref="QmpException">QEMU replied with an error.</exception>
    /// <exception cref="QmpDisconnectedException">The connection closed before the reply.</exception>
    internal Task<JsonElement> ExecuteAsync(string command, object? arguments, CancellationToken ct) =>
        ExecuteCoreAsync(command, arguments, null, ct);

    /// <summary>
    /// Runs a command with <paramref name="fd"/> attached to it (<c>SCM_RIGHTS</c>), as <c>getfd</c> and
    /// <c>add-fd</c> expect. QEMU gets its own copy; the caller still owns (and closes) <paramref name="fd"/>.
    /// </summary>
    internal Task<JsonElement> ExecuteWithFdAsync(string command, object? arguments, SafeHandle fd, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(fd);
        return ExecuteCoreAsync(command, arguments, fd, ct);
    }

    private async Task<JsonElement> ExecuteCoreAsync(string command, object? arguments, SafeHandle? fd, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        if (_disconnected.Task.IsCompleted)
            throw new QmpDisconnectedException($"QMP connection is closed; cannot run '{command}'.");

        long id = Interlocked.Increment(ref _nextId);
        var pending = new PendingCommand(command, new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously));
        _pending[id] = pending;
        try
        {
            byte[] payload = Serialize(command, arguments, id);
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                // The descriptor rides on the first bytes of the command; QEMU queues it for that command.
                int sent = fd is null ? 0 : ScmRights.SendWithFd(_socket, payload, fd);
                await _stream.WriteAsync(payload.AsMemory(sent), ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new QmpDisconnectedException($"QMP write failed for '{command}'.", e);
            }
            finally
            {
                _writeLock.Release();
            }
            // Re-check: the read loop may have ended between registering and writing.
            if (_disconnected.Task.IsCompleted)
                pending.Completion.TrySetException(new QmpDisconnectedException($"QMP connection closed while running '{command}'."));
            return await pending.Completion.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// An independent, unbounded copy of all events from now on. Dispose the subscription when
    /// done; it completes when the connection ends.
    /// </summary>
    public QmpEventSubscription SubscribeEvents()
    {
        var channel = Channel.CreateUnbounded<QmpEvent>(new UnboundedChannelOptions { SingleWriter = true });
        lock (_subscribers)
        {
            if (_disconnected.Task.IsCompleted) channel.Writer.TryComplete();
            else _subscribers.Add(channel);
        }
        return new QmpEventSubscription(channel.Reader, () =>
        {
            lock (_subscribers) _subscribers.Remove(channel);
            channel.Writer.TryComplete();
        });
    }

    private static byte[] Serialize(string command, object? arguments, long id)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("execute", command);
            if (arguments is not null)
            {
                writer.WritePropertyName("arguments");
                JsonSerializer.Serialize(writer, arguments, arguments.GetType());
            }
            writer.WriteNumber("id", id);
            writer.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private async Task ReadLoopAsync()
    {
        Exception? failure = null;
        try
        {
            while (true)
            {
                string? line = await _reader!.ReadLineAsync(_shutdown.Token).ConfigureAwait(false);
                if (line is null) break;
                if (line.Length == 0) continue;
                Dispatch(line);
            }
        }
        catch (OperationCanceledException) when (_shutdown.IsCancellationRequested) { }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            failure = e;
        }
        catch (Exception e)
        {
            _logger.LogError(e, "QMP read loop failed");
            failure = e;
        }
        finally
        {
            OnDisconnected(failure);
        }
    }

    private void Dispatch(string line)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            _logger.LogWarning(e, "Ignoring malformed QMP line: {Line}", line);
            return;
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.TryGetProperty("event", out var ev))
            {
                PublishEvent(ParseEvent(root, ev.GetString() ?? ""));
                return;
            }
            if (!root.TryGetProperty("id", out var idEl) || !idEl.TryGetInt64(out long id))
            {
                _logger.LogDebug("QMP reply without a known id: {Line}", line);
                return;
            }
            if (!_pending.TryGetValue(id, out var pending)) return; // caller gave up (cancelled)
            if (root.TryGetProperty("error", out var error))
            {
                string cls = error.TryGetProperty("class", out var c) ? c.GetString() ?? "" : "";
                string desc = error.TryGetProperty("desc", out var d) ? d.GetString() ?? "" : "";
                pending.Completion.TrySetException(new QmpException(pending.Command, cls, desc));
            }
            else if (root.TryGetProperty("return", out var ret))
            {
                pending.Completion.TrySetResult(ret.Clone());
            }
        }
    }

    private static QmpEvent ParseEvent(JsonElement root, string name)
    {
        JsonElement? data = root.TryGetProperty("data", out var d) ? d.Clone() : null;
        var timestamp = DateTimeOffset.UtcNow;
        if (root.TryGetProperty("timestamp", out var ts) &&
            ts.TryGetProperty("seconds", out var s) && ts.TryGetProperty("microseconds", out var us) &&
            s.TryGetInt64(out long sec) && us.TryGetInt64(out long usec))
        {
            timestamp = DateTimeOffset.FromUnixTimeSeconds(sec).AddTicks(usec * 10);
        }
        return new QmpEvent(name, data, timestamp);
    }

    private void PublishEvent(QmpEvent ev)
    {
        _logger.LogDebug("QMP event {Event}", ev.Name);
        _events.Writer.TryWrite(ev);
        lock (_subscribers)
        {
            foreach (var sub in _subscribers) sub.Writer.TryWrite(ev);
        }
    }

    private void OnDisconnected(Exception? failure)
    {
        var error = new QmpDisconnectedException("QMP connection closed.", failure);
        _events.Writer.TryComplete();
        lock (_subscribers)
        {
            foreach (var sub in _subscribers) sub.Writer.TryComplete();
            _subscribers.Clear();
            _disconnected.TrySetResult();
        }
        foreach (var pending in _pending.Values) pending.Completion.TrySetException(error);
    }

    public async ValueTask DisposeAsync()
    {
        _shutdown.Cancel();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (_readLoop is not null)
        {
            try { await _readLoop.ConfigureAwait(false); } catch { /* already logged by the loop */ }
        }
        else
        {
            OnDisconnected(null);
        }
        _reader?.Dispose();
        _shutdown.Dispose();
    }
}
