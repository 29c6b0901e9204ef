using Bough.Contracts;
using Bough.Engine;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Http;

/// <summary>
/// The single place where exceptions become HTTP responses, so that every failure, expected or
/// not, is a problem+json with a stable code and no stack trace leaks to clients.
/// </summary>
internal sealed class ErrorHandlingMiddleware(RequestDelegate next, IHostApplicationLifetime lifetime, ILogger<ErrorHandlingMiddleware> log)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        try
        {
            await next(ctx);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer. The engine saw the same token.
            log.LogDebug("{Method} {Path}: client disconnected", ctx.Request.Method, ctx.Request.Path);
        }
        catch (OperationCanceledException ex) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // The engine ended the work because the daemon is stopping (its lifetime token), not because of a fault.
            var shuttingDown = ErrorMap.ShuttingDown(ex);
            log.LogDebug("{Method} {Path}: ended by the daemon's shutdown", ctx.Request.Method, ctx.Request.Path);
            await WriteOrAbortAsync(ctx, shuttingDown.Status, shuttingDown.Code, shuttingDown.Message);
        }
        catch (BoughException ex)
        {
            if (ex.Status >= 500)
                log.LogWarning(ex, "{Method} {Path} failed: {Code}", ctx.Request.Method, ctx.Request.Path, ex.Code);
            else
                log.LogDebug("{Method} {Path} rejected: {Code}: {Message}", ctx.Request.Method, ctx.Request.Path, ex.Code, ex.Message);
            await WriteOrAbortAsync(ctx, ex.Status, ex.Code, ex.Message, ex.RetryAfter);
        }
        catch (BadHttpRequestException ex)
        {
            // Kestrel/minimal-API input errors: body too large, bad query binding, truncated body.
            var status = ex.StatusCode is >= 400 and < 500 ? ex.StatusCode : 400;
            var code = ProblemWriter.CodeForStatus(status); // 413 payload_too_large, 415 unsupported_media_type, else invalid_request
            log.LogDebug(ex, "{Method} {Path}: bad request", ctx.Request.Method, ctx.Request.Path);
            await WriteOrAbortAsync(ctx, status, code, ex.Message);
        }
        catch (Exception ex) when (ctx.RequestAborted.IsCancellationRequested && ex is IOException)
        {
            log.LogDebug("{Method} {Path}: connection lost", ctx.Request.Method, ctx.Request.Path);
        }
        catch (Exception ex)
        {
            log.LogError(ex, "Unhandled exception in {Method} {Path}", ctx.Request.Method, ctx.Request.Path);
            await WriteOrAbortAsync(ctx, 500, ErrorCodes.Internal,
                "an unexpected error occurred; the daemon log has the details");
        }
    }

    private Task WriteOrAbortAsync(HttpContext ctx, int status, string code, string detail, TimeSpan? retryAfter = null)
    {
        if (!ctx.Response.HasStarted)
            return ProblemWriter.WriteAsync(ctx, status, code, detail, retryAfter: retryAfter);

        // Headers (and maybe part of a body) are already out; a trailing problem would corrupt
        // the payload. Resetting the connection makes the failure visible to the client instead
        // of passing off a truncated download as complete.
        log.LogWarning("{Method} {Path}: {Code} after the response started; aborting the connection",
            ctx.Request.Method, ctx.Request.Path, code);
        ctx.Abort();
        return Task.CompletedTask;
    }
}
