using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Boot;
using Bough.Engine.Sandboxes;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Templates;

/// <summary>
/// Makes templates (boot → start detached → poll ready → snapshot → row → delete the builder)
/// and forks sandboxes from them. The sandbox work is the sandbox and branching services'; this
/// type only orchestrates them through their interfaces.
/// </summary>
internal sealed partial class TemplateService(
    EngineOptions options, ISandboxService sandboxes, ITemplateForks forks, ISnapshotService snapshots, IBootImages images,
    TemplateStore store, SandboxStore sandboxRows, ILogger<TemplateService> log) : ITemplateService
{
    /// <summary>Where the start command's output goes inside the guest.</summary>
    public const string StartLog = "/var/log/bough-template-start.log";

    public static readonly TimeSpan DefaultReadyTimeout = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan MaxReadyTimeout = TimeSpan.FromHours(1);
    private static readonly TimeSpan ReadyInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan ReadyAttemptTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Starts the command in its own session, detached from the exec (which ends at once), with
    /// output to <see cref="StartLog"/>: a plain background job would be tied to the exec's
    /// process group and stdio. <c>$BOUGH_CWD</c> carries the image's WorkingDir.
    /// </summary>
    private const string StartScript =
        "cd \"${BOUGH_CWD:-/}\" || exit 1; " + Busybox + " setsid \"$@\" >>" + StartLog + " 2>&1 </dev/null &";

    /// <summary>
    /// Run as root before the start command: an image need not have /var/log, and its User
    /// (which the start command runs as) may not be allowed to create it.
    /// </summary>
    private const string PrepareLogScript =
        Busybox + " mkdir -p /var/log && : >" + StartLog + " && " + Busybox + " chmod 666 " + StartLog;

    /// <summary>Absolute, so neither the image's PATH nor its applets matter (every image gets it injected).</summary>
    private const string Busybox = "/.bough/bin/busybox";

    /// <summary>Metadata key marking a template's builder sandbox (its value is the template name).</summary>
    public const string BuilderMetadataKey = "bough.template-builder";

    /// <summary>Names being created right now (a second create of the same name is refused, not queued).</summary>
    private readonly ConcurrentDictionary<string, byte> _creating = new(StringComparer.Ordinal);

    public async Task<Template> CreateAsync(CreateTemplateRequest request, CancellationToken ct)
    {
        var name = request.Name ?? throw BoughException.Invalid("field 'name' is required");
        if (!NamePattern().IsMatch(name))
            throw BoughException.Invalid($"template name '{name}' is not valid: 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
        var start = RequestValidation.ValidateArgv(request.Start, "start");
        var ready = RequestValidation.ValidateArgv(request.Ready, "ready");
        var readyTimeout = request.ReadyTimeoutSeconds is { } s
            ? (double.IsFinite(s) && s > 0 && s <= MaxReadyTimeout.TotalSeconds ? TimeSpan.FromSeconds(s)
                : throw BoughException.Invalid($"readyTimeoutSeconds must be > 0 and at most {MaxReadyTimeout.TotalSeconds}"))
            : DefaultReadyTimeout;
        var boot = new CreateSandboxRequest
        {
            Image = request.Image ?? "base", Vcpus = request.Vcpus, MemoryMiB = request.MemoryMiB, Env = request.Env,
            Ports = request.Ports, Internet = request.Internet,
            Metadata = new() { [BuilderMetadataKey] = name },
        };
        var spec = RequestValidation.ValidateCreate(boot, options);

        if (await store.GetAsync(name, ct) is not null || !_creating.TryAdd(name, 0))
            throw new BoughException(ErrorCodes.TemplateExists, $"a template named '{name}' already exists (or is being created)");
        Sandbox? builder = null;
        try
        {
            var sw = Stopwatch.StartNew();
            builder = await sandboxes.CreateAsync(boot, ct);
            if (start is not null) await StartAsync(builder, start, ct);
            if (ready is not null) await WaitReadyAsync(name, builder, ready, readyTimeout, ct);
            var warmup = sw.ElapsedMilliseconds;

            var snap = await forks.CaptureTemplateAsync(builder.Id, ct);
            var row = new TemplateRecord
            {
                Name = name, Image = builder.Image, SnapshotId = snap.Id, Vcpus = spec.Vcpus, MemoryMiB = spec.MemoryMiB,
                Start = start, Ready = ready, Env = spec.Env, Ports = spec.Ports, Internet = spec.Internet,
                WarmupMs = warmup, CreatedAt = DateTimeOffset.UtcNow,
            };
            try
            {
                await store.InsertAsync(row, CancellationToken.None);
            }
            catch (TemplateExistsException ex)
            {
                await DeleteBuilderAsync(builder);
                builder = null;
                await TryDeleteSnapshotAsync(snap.Id);
                throw new BoughException(ErrorCodes.TemplateExists, ex.Message, ex);
            }
            log.LogInformation("template {Name} ready: snapshot {Snapshot}, warm-up {Ms} ms", name, snap.Id, warmup);
            return ToContract(row);
        }
        finally
        {
            if (builder is not null) await DeleteBuilderAsync(builder);
            _creating.TryRemove(name, out _);
        }
    }

    /// <summary>Launches the start command detached; fails only if it could not even be launched.</summary>
    private async Task StartAsync(Sandbox builder, List<string> start, CancellationToken ct)
    {
        var config = await images.GetConfigAsync(builder.Image, ct);
        var prep = await sandboxes.ExecAsync(builder.Id, new ExecCommand([Busybox, "sh", "-c", PrepareLogScript],
            Cwd: "/", Timeout: TimeSpan.FromSeconds(60), User: "0:0"), ct);
        if (prep.ExitCode != 0)
            throw new BoughException(ErrorCodes.TemplateNotReady, $"could not create {StartLog} (exit {prep.ExitCode}): {Trim(prep.Stderr + prep.Stdout)}");
        var r = await sandboxes.ExecAsync(builder.Id, new ExecCommand(
            [Busybox, "sh", "-c", StartScript, "sh", .. start],
            Env: new Dictionary<string, string> { ["BOUGH_CWD"] = config.WorkingDir ?? "/" },
            Timeout: TimeSpan.FromSeconds(60)), ct);
        if (r.ExitCode != 0)
            throw new BoughException(ErrorCodes.TemplateNotReady,
                $"the start command could not be launched (exit {r.ExitCode}): {Trim(r.Stderr + r.Stdout)}");
    }

    /// <summary>Runs the ready command every ~200 ms (each try bounded) until it exits 0 or the timeout passes.</summary>
    private async Task WaitReadyAsync(string name, Sandbox builder, List<string> ready, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        ExecResult? last = null;
        var tries = 0;
        while (true)
        {
            var left = timeout - deadline.Elapsed;
            var attempt = left < ReadyAttemptTimeout ? left : ReadyAttemptTimeout;
            if (attempt < TimeSpan.FromMilliseconds(100)) attempt = TimeSpan.FromMilliseconds(100);
            tries++;
            try
            {
                last = await sandboxes.ExecAsync(builder.Id, new ExecCommand(ready, Timeout: attempt), ct);
            }
            catch (BoughException ex) when (ex.Code is ErrorCodes.InvalidRequest or ErrorCodes.GuestError
                                                or ErrorCodes.FileNotFound or ErrorCodes.PermissionDenied)
            {
                // The command cannot even be spawned (missing binary, bad user): waiting will not fix it.
                throw await NotReadyAsync(name, builder, $"the ready command [{string.Join(' ', ready)}] could not run: {ex.Message}");
            }
            if (last.ExitCode == 0 && !last.TimedOut) return;
            if (deadline.Elapsed >= timeout) break;
            await Task.Delay(ReadyInterval, ct);
        }

        var summary = $"template '{name}' was not ready within {timeout.TotalSeconds:0.#} s ({tries} tries): the ready command " +
            $"[{string.Join(' ', ready)}] last {(last!.TimedOut ? "timed out" : $"exited {last.ExitCode}")}";
        var output = Trim(last.Stdout + last.Stderr);
        throw await NotReadyAsync(name, builder, output.Length > 0 ? $"{summary}: {output}" : summary);
    }

    /// <summary>template_not_ready with what helps: the start command's log and the guest console.</summary>
    private async Task<BoughException> NotReadyAsync(string name, Sandbox builder, string summary)
    {
        var detail = new StringBuilder(summary);
        var startLog = await StartLogTailAsync(builder.Id);
        if (startLog.Length > 0) detail.Append($"\n--- start log (last lines) ---\n{startLog}");
        var console = ConsoleLog.Tail(Path.Combine(options.SandboxesDir, builder.Id), 15);
        if (console.Length > 0) detail.Append($"\n--- console (last lines) ---\n{console}");
        log.LogInformation("template {Name} not ready: {Summary}", name, summary);
        return new BoughException(ErrorCodes.TemplateNotReady, detail.ToString());
    }

    private async Task<string> StartLogTailAsync(string id)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var r = await sandboxes.ExecAsync(id, new ExecCommand([Busybox, "tail", "-n", "20", StartLog],
                Timeout: TimeSpan.FromSeconds(10)), cts.Token);
            return r.ExitCode == 0 ? r.Stdout.TrimEnd() : "";
        }
        catch (Exception ex) when (ex is BoughException or OperationCanceledException)
        {
            return "";
        }
    }

    /// <summary>
    /// Start-up, after the sandbox manager's recovery: a template create the daemon was killed in
    /// left its builder sandbox (a live VM the caller never heard of) and maybe a published
    /// template snapshot no row names. Both go; nothing can be creating a template yet.
    /// </summary>
    public async Task RecoverAsync(CancellationToken ct)
    {
        var builders = (await sandboxes.ListAsync(ct)).Where(s => s.Metadata.ContainsKey(BuilderMetadataKey)).ToList();
        if (builders.Count == 0) return;
        var named = (await store.ListAsync(ct)).Select(t => t.SnapshotId).ToHashSet(StringComparer.Ordinal);
        var builderIds = builders.Select(b => b.Id).ToHashSet(StringComparer.Ordinal);
        // Only snapshots of these builders: a template snapshot kept after its template was deleted
        // (it had child snapshots) is the user's now and is never touched here.
        var orphans = (await snapshots.ListSnapshotsAsync(ct))
            .Where(s => s.Kind == SnapshotKind.Template.ToName() && s.SourceSandboxId is { } src && builderIds.Contains(src) && !named.Contains(s.Id))
            .ToList();
        foreach (var builder in builders)
        {
            log.LogWarning("removing sandbox {Id}: builder of template '{Name}', whose creation a daemon restart interrupted",
                builder.Id, builder.Metadata[BuilderMetadataKey]);
            await DeleteBuilderAsync(builder);
        }
        foreach (var snap in orphans)
        {
            log.LogWarning("removing snapshot {Id}: captured for a template whose creation a daemon restart interrupted", snap.Id);
            await TryDeleteSnapshotAsync(snap.Id);
        }
    }

    public async Task<IReadOnlyList<Template>> ListAsync(CancellationToken ct) =>
        (await store.ListAsync(ct)).Select(ToContract).ToList();

    public async Task<Template> GetAsync(string name, CancellationToken ct) => ToContract(await FindAsync(name, ct));

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        var row = await FindAsync(name, ct);
        var users = (await sandboxRows.ListAsync(ct)).Where(s => s.Template == name).Select(s => s.Id).ToList();
        if (users.Count > 0)
            throw new BoughException(ErrorCodes.TemplateInUse,
                $"template '{name}' is used by sandbox(es) {string.Join(", ", users)}; delete those first");
        await store.DeleteAsync(name, CancellationToken.None);
        await TryDeleteSnapshotAsync(row.SnapshotId);
        log.LogInformation("template {Name} deleted", name);
    }

    public async Task<IReadOnlyList<Sandbox>> CreateSandboxesAsync(CreateSandboxRequest request, CancellationToken ct)
    {
        var name = request.Template ?? throw BoughException.Invalid("template is required");
        if (request.Image is not null || request.Snapshot is not null)
            throw BoughException.Invalid("'template' excludes 'image' and 'snapshot' (a template fixes both)");
        var row = await FindAsync(name, ct);
        var env = new Dictionary<string, string>(row.Env);
        foreach (var (k, v) in request.Env ?? []) env[k] = v;
        return await forks.CreateFromSnapshotAsync(request with
        {
            Template = null, Snapshot = row.SnapshotId, Env = env,
            Ports = request.Ports ?? row.Ports.ToList(), Internet = request.Internet ?? row.Internet,
        }, row.Name, ct);
    }

    private async Task<TemplateRecord> FindAsync(string name, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(name) || !NamePattern().IsMatch(name))
            throw new BoughException(ErrorCodes.TemplateNotFound, $"no template named '{name}'");
        return await store.GetAsync(name, ct) ?? throw new BoughException(ErrorCodes.TemplateNotFound, $"no template named '{name}'");
    }

    private async Task DeleteBuilderAsync(Sandbox builder)
    {
        try { await sandboxes.DeleteAsync(builder.Id, CancellationToken.None); }
        catch (BoughException ex) when (ex.Code == ErrorCodes.SandboxNotFound) { }
        catch (Exception ex) { log.LogWarning(ex, "could not delete template builder sandbox {Id}", builder.Id); }
    }

    /// <summary>
    /// The snapshot goes with its template, unless snapshots were taken of sandboxes forked from
    /// it since: then it stays as an ordinary snapshot (their parent).
    /// </summary>
    private async Task TryDeleteSnapshotAsync(string snapshotId)
    {
        try { await snapshots.DeleteSnapshotAsync(snapshotId, cascade: false, CancellationToken.None); }
        catch (BoughException ex) when (ex.Code is ErrorCodes.SnapshotInUse or ErrorCodes.SnapshotNotFound)
        {
            log.LogWarning("kept snapshot {Snapshot} of a deleted template: {Reason}", snapshotId, ex.Message);
        }
    }

    private static string Trim(string s)
    {
        s = s.Trim();
        return s.Length <= 2000 ? s : "…" + s[^2000..];
    }

    private static Template ToContract(TemplateRecord r) => new()
    {
        Name = r.Name, Image = r.Image, SnapshotId = r.SnapshotId, Vcpus = r.Vcpus, MemoryMiB = r.MemoryMiB,
        Start = r.Start?.ToList(), Ready = r.Ready?.ToList(), Env = new Dictionary<string, string>(r.Env),
        Ports = r.Ports.ToList(), Internet = r.Internet, WarmupMs = r.WarmupMs, CreatedAt = r.CreatedAt,
    };

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();
}
