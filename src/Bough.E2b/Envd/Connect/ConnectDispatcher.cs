using System.Globalization;
using System.Text.Json;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace Bough.E2b.Envd.Connect;

/// <summary>
/// Routes <c>POST /package.Service/Method</c> to the registered <see cref="IConnectUnaryMethod"/> or
/// <see cref="IConnectStreamMethod"/> (Connect protocol, JSON codec only). Unary calls take
/// <c>application/json</c>, streams <c>application/connect+json</c> with one enveloped request.
/// Methods of envd's two services that nothing implements yet answer <c>unimplemented</c>.
/// </summary>
internal sealed class ConnectDispatcher(
    IEnumerable<IConnectUnaryMethod> unary, IEnumerable<IConnectStreamMethod> streams, ILogger<ConnectDispatcher> log)
{
    private readonly Dictionary<string, IConnectUnaryMethod> _unary = unary.ToDictionary(m => m.Name, StringComparer.Ordinal);
    private readonly Dictionary<string, IConnectStreamMethod> _streams = streams.ToDictionary(m => m.Name, StringComparer.Ordinal);

    /// <summary>Longest deadline honoured (Bough's longest exec).</summary>
    private static readonly TimeSpan MaxDeadline = TimeSpan.FromDays(1);

    public async Task HandleAsync(EnvdRequest request, string path)
    {
        var http = request.Http;
        var name = path.TrimStart('/');
        if (!HttpMethods.IsPost(http.Request.Method))
        {
            await ConnectError.WriteUnaryAsync(http, 405, ConnectError.Unimplemented, "Connect calls are POST");
            return;
        }
        var deadline = Deadline(http.Request);
        if (_streams.TryGetValue(name, out var stream))
            await StreamAsync(request, stream, deadline);
        else if (_unary.TryGetValue(name, out var method))
            await UnaryAsync(request, method, deadline);
        else
            await ConnectError.WriteUnaryAsync(http, 501, ConnectError.Unimplemented, $"{name} is not implemented by this server");
    }

    private async Task UnaryAsync(EnvdRequest request, IConnectUnaryMethod method, TimeSpan? deadline)
    {
        var http = request.Http;
        if (!IsMediaType(http.Request, "application/json"))
        {
            await ConnectError.WriteUnaryAsync(http, 415, ConnectError.InvalidArgument, "unary calls take Content-Type application/json");
            return;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        if (deadline is { } d)
            timeout.CancelAfter(d);
        try
        {
            using var body = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: timeout.Token);
            var result = await method.CallAsync(new ConnectCall(request, body.RootElement, deadline));
            await http.Response.WriteAsJsonAsync(result, E2bJson.Options, "application/json", http.RequestAborted);
        }
        catch (Exception ex) when (!http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
        {
            var error = ToError(ex, method.Name, timeout.IsCancellationRequested);
            await ConnectError.WriteUnaryAsync(http, ConnectError.StatusForCode(error.Code), error.Code, error.Message);
        }
    }

    private async Task StreamAsync(EnvdRequest request, IConnectStreamMethod method, TimeSpan? deadline)
    {
        var http = request.Http;
        if (!IsMediaType(http.Request, ConnectStream.MediaType))
        {
            await ConnectError.WriteUnaryAsync(http, 415, ConnectError.InvalidArgument, $"streaming calls take Content-Type {ConnectStream.MediaType}");
            return;
        }
        var stream = new ConnectStream(http);
        ConnectError? error = null;
        try
        {
            var payload = await ConnectEnvelope.ReadSingleAsync(http.Request, http.RequestAborted);
            using var message = JsonDocument.Parse(payload);
            await method.StreamAsync(new ConnectCall(request, message.RootElement, deadline), stream);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return; // the client went away: nobody reads an end message
        }
        catch (Exception ex)
        {
            error = ToError(ex, method.Name, deadlineHit: false);
        }
        try
        {
            await stream.EndAsync(error, http.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            log.LogDebug("{Method}: the client left before the end of the stream", method.Name);
        }
    }

    private ConnectError ToError(Exception ex, string method, bool deadlineHit)
    {
        switch (ex)
        {
            case ConnectException c:
                return new ConnectError(c.Code, c.Message);
            case OperationCanceledException when deadlineHit:
                return new ConnectError(ConnectError.DeadlineExceeded, "the call's deadline (Connect-Timeout-Ms) passed");
            case JsonException or EndOfStreamException:
                return new ConnectError(ConnectError.InvalidArgument, $"the request message is not valid: {ex.Message}");
            case BoughException or E2bException:
                var (status, message) = E2bJson.Describe(ex);
                return new ConnectError(ConnectError.CodeForStatus(status), message);
            default:
                log.LogError(ex, "{Method} failed", method);
                return new ConnectError(ConnectError.Internal, "an unexpected error occurred; the daemon log has the details");
        }
    }

    private static TimeSpan? Deadline(HttpRequest request)
    {
        var value = request.Headers["Connect-Timeout-Ms"].ToString();
        if (string.IsNullOrEmpty(value))
            return null;
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) || ms <= 0)
            throw new ConnectException(ConnectError.InvalidArgument, "Connect-Timeout-Ms must be a positive integer");
        var deadline = TimeSpan.FromMilliseconds(Math.Min(ms, (long)MaxDeadline.TotalMilliseconds));
        return deadline;
    }

    private static bool IsMediaType(HttpRequest request, string expected) =>
        MediaTypeHeaderValue.TryParse(request.ContentType, out var media)
        && media.MediaType.Equals(expected, StringComparison.OrdinalIgnoreCase);
}
