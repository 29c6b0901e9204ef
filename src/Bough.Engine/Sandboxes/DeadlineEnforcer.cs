using System.Collections.Concurrent;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Lifecycle;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Ends sandboxes at their deadline (<see cref="SandboxRecord.EndAt"/>): <c>kill</c> deletes the
/// sandbox (also a dead or stopped one, whose disk would otherwise stay), <c>pause</c> pauses a
/// running one (a dead or stopped one cannot be paused: its deadline lapses). Deadlines live in
/// the catalog, so they survive daemon restarts: this reads them from there on every wake-up.
/// </summary>
/// <remarks>
/// Sleeps until the earliest deadline (at most <see cref="MaxSleep"/>, so a wall-clock step is
/// noticed) or until <see cref="Deadlines.Changed"/>. Each expiry re-checks the deadline under the
/// sandbox's lifecycle lease, so a timeout extended meanwhile wins. A pause that fails (a busy
/// sandbox, a capture error) is retried with backoff rather than turned into a kill.
/// Registered after the engine's start-up service, so it starts once recovery has run.
/// </remarks>
internal sealed class DeadlineEnforcer(
    SandboxStore store, SandboxRegistry registry, SandboxService sandboxes, BranchService branching, Deadlines deadlines,
    EngineLifetime lifetime, EngineOptions options, TimeProvider time, ILogger<DeadlineEnforcer> log) : BackgroundService
{
    internal static readonly TimeSpan MaxSleep = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan BusyRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);
    private const int Parallelism = 4;

    private readonly ConcurrentDictionary<string, (int Failures, DateTimeOffset RetryAt)> _retries = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var linked = lifetime.Link(stoppingToken);
        var ct = linked.Token;
        while (!ct.IsCancellationRequested)
        {
            var changed = deadlines.WhenChanged; // read first: a change during the pass wakes the next sleep at once
            DateTimeOffset? next;
            try
            {
                next = await ExpireDueAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                log.LogError(ex, "checking sandbox deadlines failed; trying again in {Sleep}", MaxSleep);
                next = null;
            }
            var sleep = next is { } n ? n - deadlines.Now : MaxSleep;
            sleep = sleep < TimeSpan.Zero ? TimeSpan.Zero : sleep > MaxSleep ? MaxSleep : sleep;
            using var wake = CancellationTokenSource.CreateLinkedTokenSource(ct);
            await Task.WhenAny(Task.Delay(sleep, time, wake.Token), changed);
            await wake.CancelAsync();
        }
    }

    /// <summary>One pass: ends every sandbox whose deadline has passed.</summary>
    /// <returns>When the next pass is due (the earliest future deadline or retry), or null if none.</returns>
    internal async Task<DateTimeOffset?> ExpireDueAsync(CancellationToken ct)
    {
        var now = deadlines.Now;
        DateTimeOffset? next = null;
        var due = new List<SandboxRecord>();
        foreach (var row in await store.ListAsync(ct))
        {
            var r = registry.Get(row.Id)?.Record ?? row;
            // Creates restart the clock once running; deletes and pauses in progress end the row's deadline themselves.
            if (r.EndAt is not { } end || r.State is SandboxState.Starting or SandboxState.Stopping or SandboxState.Paused) continue;
            var at = _retries.TryGetValue(r.Id, out var retry) && retry.RetryAt > end ? retry.RetryAt : end;
            if (at <= now) due.Add(r);
            else if (next is null || at < next) next = at;
        }
        await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
            async (r, token) =>
            {
                if (await ExpireAsync(r, token) is { } retryAt)
                    lock (due) next = next is null || retryAt < next ? retryAt : next;
            });
        return next;
    }

    /// <returns>When to try again, or null when the sandbox is done with (ended, or its deadline moved).</returns>
    private async Task<DateTimeOffset?> ExpireAsync(SandboxRecord r, CancellationToken ct)
    {
        bool Due(SandboxRecord x, TimeoutAction action) => x.EndAt is { } e && e <= deadlines.Now && x.OnTimeout == action;
        try
        {
            if (r.OnTimeout == TimeoutAction.Kill)
            {
                if (await sandboxes.DeleteIfAsync(r.Id, x => Due(x, TimeoutAction.Kill), ct))
                    log.LogInformation("sandbox {Id} reached its deadline {EndAt} and was deleted", r.Id, r.EndAt);
            }
            else if (r.State == SandboxState.Running)
            {
                if (await branching.PauseIfAsync(r.Id, x => Due(x, TimeoutAction.Pause), ct) is not null)
                    log.LogInformation("sandbox {Id} reached its deadline {EndAt} and was paused", r.Id, r.EndAt);
            }
            else
            {
                await LapseAsync(r.Id, x => Due(x, TimeoutAction.Pause), ct);
            }
            _retries.TryRemove(r.Id, out _);
            return null;
        }
        catch (BoughException ex) when (ex.Code == ErrorCodes.SandboxNotFound)
        {
            _retries.TryRemove(r.Id, out _);
            return null;
        }
        catch (BoughException ex) when (ex.Code is ErrorCodes.SandboxBusy or ErrorCodes.SandboxNotRunning or ErrorCodes.TooManyCaptures)
        {
            // Another operation holds it, or its state changed under us: look again shortly.
            return deadlines.Now + BusyRetry;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException && !(ex is OperationCanceledException && ct.IsCancellationRequested))
        {
            var failures = _retries.TryGetValue(r.Id, out var previous) ? previous.Failures + 1 : 1;
            var wait = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, Math.Pow(2, failures)));
            var retryAt = deadlines.Now + wait;
            _retries[r.Id] = (failures, retryAt);
            log.LogWarning(ex, "sandbox {Id} reached its deadline but could not be {Action}ed; trying again in {Wait}",
                r.Id, r.OnTimeout == TimeoutAction.Kill ? "delet" : "paus", wait);
            return retryAt;
        }
    }

    /// <summary>A pause deadline of a sandbox that is not running (dead, stopped) cannot pause anything: it is cleared.</summary>
    private async Task LapseAsync(string id, Func<SandboxRecord, bool> stillDue, CancellationToken ct)
    {
        await using var lease = await registry.AcquireAsync(id, SandboxOperation.Timeout, options.BusyWait, ct);
        if (registry.Get(id) is not null) return; // running again (or starting): the next pass decides
        var row = await store.GetAsync(id, ct);
        if (row is null || !stillDue(row)) return;
        await store.UpdateAsync(row with { EndAt = null }, CancellationToken.None);
        log.LogInformation("sandbox {Id} reached its pause deadline while {State}; the deadline lapses", id, row.State.ToName());
    }
}
