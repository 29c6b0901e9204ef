using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.OpenApi;

namespace Bough.Server.Endpoints;

/// <summary>Command execution, buffered (JSON) or streamed (NDJSON, chosen by the Accept header).</summary>
internal static class ExecEndpoints
{
    public const string NdjsonMediaType = "application/x-ndjson";

    public static void MapExecEndpoints(this RouteGroupBuilder group)
    {
        group.MapPost("/{id}/exec", Exec)
            .WithName("Exec").WithTags("exec")
            .WithDescription($"Runs a command (`cmd` left out or empty: the image's Entrypoint + Cmd; `user`: name or uid[:gid], default the image's User). With `Accept: {NdjsonMediaType}` the output is streamed as one ExecEvent per line, ending with an `exit` (or `error`) event. The buffered form has a default timeout and caps on output (413) and on concurrent buffered execs (429 `too_many_execs` with Retry-After); the streamed form has none of these.")
            .Accepts<ExecRequest>("application/json")
            .AddOpenApiOperationTransformer(DocumentNdjsonAsync)
            .ProducesBoughProblems(400, 404, 409, 413, 429, 500, 502, 503);
    }

    /// <summary>
    /// Adds the NDJSON alternative to the 200 response. Response metadata is keyed by status
    /// code, so two typed results for 200 can't both be declared the ordinary way.
    /// </summary>
    private static async Task DocumentNdjsonAsync(OpenApiOperation op, OpenApiOperationTransformerContext ctx, CancellationToken ct)
    {
        if (op.Responses?.TryGetValue("200", out var ok) == true && ok.Content is { } content)
            content[NdjsonMediaType] = new OpenApiMediaType { Schema = await ctx.GetOrCreateSchemaAsync(typeof(ExecEvent), null, ct) };
    }

    private static async Task<Results<Ok<ExecResult>, NdjsonStream<ExecOutput, ExecEvent>>> Exec(
        string id, HttpContext ctx, [FromServices] ISandboxService engine, [FromServices] ILoggerFactory loggers)
    {
        var ct = ctx.RequestAborted;
        var request = await JsonBody.ReadAsync<ExecRequest>(ctx.Request, ct);
        var command = ToCommand(request);

        if (WantsNdjson(ctx.Request))
            // Disposing the stream's enumerator (on disconnect or completion) is how the engine learns to tear the
            // guest process down if it still runs.
            return new NdjsonStream<ExecOutput, ExecEvent>(engine.ExecStreamAsync(id, command, ct), StreamLines.ToLine,
                o => o.Kind == ExecOutputKind.Exit, StreamLines.ExecError, StreamLines.ExecEndedWithoutExit,
                loggers.CreateLogger(typeof(ExecEndpoints).FullName!));

        return TypedResults.Ok(await engine.ExecAsync(id, command, ct));
    }

    /// <summary>Maps the wire request to the engine's command, rejecting what cannot be represented.</summary>
    internal static ExecCommand ToCommand(ExecRequest request)
    {
        // No cmd: the engine runs the image's Entrypoint + Cmd (400 when it has none).
        var cmd = request.Cmd ?? [];
        for (var i = 0; i < cmd.Count; i++)
        {
            if (cmd[i] is null)
                throw new BoughException(ErrorCodes.InvalidRequest, $"wrong type at $.cmd[{i}]: expected a string, got null");
        }

        ReadOnlyMemory<byte> stdin = default;
        if (!string.IsNullOrEmpty(request.Stdin))
        {
            try
            {
                stdin = Convert.FromBase64String(request.Stdin);
            }
            catch (FormatException)
            {
                throw new BoughException(ErrorCodes.InvalidRequest, "field 'stdin' must be base64-encoded bytes");
            }
        }

        TimeSpan? timeout = null;
        if (request.TimeoutSeconds is { } seconds)
        {
            // Range and sign are the engine's call; we only refuse what TimeSpan cannot hold.
            if (!double.IsFinite(seconds) || Math.Abs(seconds) >= TimeSpan.MaxValue.TotalSeconds)
                throw new BoughException(ErrorCodes.InvalidRequest, "field 'timeoutSeconds' is out of range");
            timeout = TimeSpan.FromSeconds(seconds);
        }

        return new ExecCommand(cmd, request.Env, request.Cwd, stdin, timeout, request.User);
    }

    private static bool WantsNdjson(HttpRequest request)
    {
        foreach (var accept in request.GetTypedHeaders().Accept)
        {
            if (accept.MediaType.Equals(NdjsonMediaType, StringComparison.OrdinalIgnoreCase)
                && accept.Quality is not 0)
                return true;
        }
        return false;
    }
}
