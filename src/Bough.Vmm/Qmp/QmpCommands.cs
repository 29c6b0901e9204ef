using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm;

/// <summary>The VM's run state from <c>query-status</c>.</summary>
/// <param name="Running">vCPUs are running.</param>
/// <param name="Status">QEMU's run state: <c>running</c>, <c>paused</c>, <c>prelaunch</c>, <c>inmigrate</c>, <c>shutdown</c>, ...</param>
public sealed record QmpRunStatus(bool Running, string Status);

/// <summary>
/// The QMP commands Bough uses, typed: the one place that knows command names, argument shapes and how their
/// replies look (QEMU 7.2). Everything outside Bough.Vmm calls these instead of passing command strings.
/// </summary>
/// <remarks>
/// Errors: <see cref="QmpException"/> when QEMU rejects a command, <see cref="QmpDisconnectedException"/> when the
/// connection ends first, <see cref="InvalidDataException"/> when a reply does not have the documented shape.
/// </remarks>
public static class QmpCommands
{
    /// <summary><c>query-status</c>.</summary>
    public static async Task<QmpRunStatus> QueryStatusAsync(this QmpClient qmp, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        return ParseRunStatus(await qmp.ExecuteAsync("query-status", null, ct).ConfigureAwait(false));
    }

    /// <summary><c>stop</c>: pauses the vCPUs (idempotent).</summary>
    public static Task StopAsync(this QmpClient qmp, CancellationToken ct) => Run(qmp, "stop", null, ct);

    /// <summary><c>cont</c>: resumes the vCPUs (idempotent on a running VM).</summary>
    public static Task ContAsync(this QmpClient qmp, CancellationToken ct) => Run(qmp, "cont", null, ct);

    /// <summary><c>quit</c>: QEMU exits; the reply may be lost with the connection (then <see cref="QmpDisconnectedException"/>).</summary>
    public static Task QuitAsync(this QmpClient qmp, CancellationToken ct) => Run(qmp, "quit", null, ct);

    /// <summary>
    /// <c>query-block</c>: the block devices with their image chains. Images the VM was handed as descriptors show up
    /// in QEMU as <c>/dev/fdset/N</c>; they are reported by the path they were opened from (the fd set's opaque,
    /// set by <see cref="BlockdevSnapshotSyncAsync"/>).
    /// </summary>
    public static async Task<IReadOnlyList<BlockDeviceInfo>> QueryBlockAsync(this QmpClient qmp, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        var devices = BlockDeviceInfo.ParseList(await qmp.ExecuteAsync("query-block", null, ct).ConfigureAwait(false));
        if (!devices.Any(d => FdSets.IsFdSetPath(d.File) || d.BackingChain.Any(FdSets.IsFdSetPath))) return devices;
        var paths = FdSets.ParseOpaques(await qmp.ExecuteAsync("query-fdsets", null, ct).ConfigureAwait(false));
        return devices.Select(d => d with
        {
            File = FdSets.Resolve(d.File, paths),
            BackingChain = d.BackingChain.Select(b => FdSets.Resolve(b, paths)!).ToList(),
        }).ToList();
    }

    /// <summary>The image file the VM writes to: <see cref="BlockDeviceInfo.File"/> of the first device with a medium, or null.</summary>
    public static async Task<string?> ActiveDiskFileAsync(this QmpClient qmp, CancellationToken ct)
    {
        var devices = await qmp.QueryBlockAsync(ct).ConfigureAwait(false);
        return devices.FirstOrDefault(d => d.IsInserted)?.File;
    }

    /// <summary>Number of vCPUs (<c>query-cpus-fast</c>).</summary>
    public static async Task<int> QueryVcpuCountAsync(this QmpClient qmp, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        JsonElement cpus = await qmp.ExecuteAsync("query-cpus-fast", null, ct).ConfigureAwait(false);
        return cpus.ValueKind == JsonValueKind.Array ? cpus.GetArrayLength()
            : throw new InvalidDataException($"query-cpus-fast returned {cpus.ValueKind}, not an array.");
    }

    /// <summary>Boot RAM in bytes (<c>query-memory-size-summary</c>, <c>base-memory</c>).</summary>
    public static async Task<long> QueryBaseMemoryBytesAsync(this QmpClient qmp, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        JsonElement summary = await qmp.ExecuteAsync("query-memory-size-summary", null, ct).ConfigureAwait(false);
        return summary.ValueKind == JsonValueKind.Object && summary.TryGetProperty("base-memory", out var b) && b.TryGetInt64(out long bytes)
            ? bytes
            : throw new InvalidDataException($"query-memory-size-summary has no base-memory: {summary.GetRawText()}");
    }

    /// <summary>
    /// Writes the device state (no RAM) of a stopped VM to <paramref name="path"/> (<c>xen-save-devices-state</c>,
    /// not live). It loads back as an incoming migration; see <see cref="MigrateIncomingFromFileAsync"/>. The file is
    /// created here (daemon's owner and mode) and handed to QEMU as a descriptor: a jailed QEMU cannot open paths
    /// in the data directory.
    /// </summary>
    public static async Task SaveDeviceStateAsync(this QmpClient qmp, string path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        // Write-only: QEMU hands out an fd set's descriptor only for the same access mode it asks for.
        using SafeFileHandle file = File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite);
        int set = await FdSets.AddAsync(qmp, file, Path.GetFullPath(path), ct).ConfigureAwait(false);
        try
        {
            await Run(qmp, "xen-save-devices-state",
                new Dictionary<string, object> { ["filename"] = FdSets.PathOf(set), ["live"] = false }, ct).ConfigureAwait(false);
        }
        finally
        {
            await FdSets.RemoveQuietlyAsync(qmp, set).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Switches block node <paramref name="nodeName"/> to the existing qcow2 <paramref name="overlayFile"/>
    /// (<c>blockdev-snapshot-sync</c>, mode <c>existing</c>): from then on the VM writes to the overlay, attached as
    /// node <paramref name="overlayNodeName"/>, and the old image is its read-only backing. The overlay is opened here
    /// and passed as descriptors in an fd set that stays (its opaque is the path, which is how
    /// <see cref="QueryBlockAsync"/> names the image that QEMU knows as <c>/dev/fdset/N</c>). Call
    /// <see cref="CloseSpentDescriptorsAsync"/> once the VM runs again.
    /// </summary>
    public static async Task BlockdevSnapshotSyncAsync(this QmpClient qmp, string nodeName, string overlayFile, string overlayNodeName,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        ArgumentException.ThrowIfNullOrWhiteSpace(overlayFile);
        ArgumentException.ThrowIfNullOrWhiteSpace(overlayNodeName);
        int set = await FdSets.AddImageAsync(qmp, overlayFile, ct).ConfigureAwait(false);
        try
        {
            await Run(qmp, "blockdev-snapshot-sync", new Dictionary<string, object>
            {
                ["node-name"] = nodeName,
                ["snapshot-file"] = FdSets.PathOf(set),
                ["snapshot-node-name"] = overlayNodeName,
                ["format"] = "qcow2",
                ["mode"] = "existing",
            }, ct).ConfigureAwait(false);
        }
        catch
        {
            await FdSets.RemoveQuietlyAsync(qmp, set).ConfigureAwait(false);
            throw;
        }

    }

    /// <summary>
    /// After a capture, with the VM running again: closes every descriptor QEMU was handed that it no longer needs
    /// (device-state files, and the read-write descriptors of images frozen under <paramref name="activeImage"/>, which
    /// QEMU reopened read-only). A compromised QEMU must not be able to write into a layer that snapshots and their
    /// children share. QEMU closes a removed descriptor only while the VM runs, hence after <c>cont</c>.
    /// </summary>
    public static Task CloseSpentDescriptorsAsync(this QmpClient qmp, string activeImage, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentException.ThrowIfNullOrWhiteSpace(activeImage);
        return FdSets.RemoveSpentAsync(qmp, Path.GetFullPath(activeImage), ct);
    }

    /// <summary>
    /// Rewrites the backing-file name in the header of the image of node <paramref name="nodeName"/>
    /// (<c>change-backing-file</c>). QEMU does not reopen anything: the attached backing node stays as it is.
    /// </summary>
    public static Task ChangeBackingFileAsync(this QmpClient qmp, string nodeName, string backingFile, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        ArgumentException.ThrowIfNullOrWhiteSpace(backingFile);
        return Run(qmp, "change-backing-file", new Dictionary<string, object>
        {
            ["device"] = nodeName,
            ["image-node-name"] = nodeName,
            ["backing-file"] = backingFile,
        }, ct);
    }

    /// <summary>Turns migration capabilities on or off (<c>migrate-set-capabilities</c>), e.g. <c>x-ignore-shared</c>, <c>events</c>.</summary>
    public static Task SetMigrationCapabilitiesAsync(this QmpClient qmp, IReadOnlyDictionary<string, bool> capabilities, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(capabilities);
        var list = capabilities.Select(c => new Dictionary<string, object> { ["capability"] = c.Key, ["state"] = c.Value }).ToArray();
        return Run(qmp, "migrate-set-capabilities", new Dictionary<string, object> { ["capabilities"] = list }, ct);
    }

    /// <summary>
    /// Starts loading an incoming migration (QEMU started with <c>-incoming defer</c>) from the file at
    /// <paramref name="path"/>. The file is opened here and handed to QEMU as a descriptor (<c>getfd</c> +
    /// <c>fd:</c> URI): no shell, no quoting, and QEMU needs no access to the path. Returns once loading has
    /// started; wait for <see cref="QueryMigrationStatusAsync"/> or the <c>MIGRATION</c> event.
    /// </summary>
    public static async Task MigrateIncomingFromFileAsync(this QmpClient qmp, string path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string fdName = "bough-incoming-" + Guid.NewGuid().ToString("N")[..12];
        using (SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read))
            await qmp.ExecuteWithFdAsync("getfd", new Dictionary<string, object> { ["fdname"] = fdName }, file, ct).ConfigureAwait(false);
        await Run(qmp, "migrate-incoming", new Dictionary<string, object> { ["uri"] = "fd:" + fdName }, ct).ConfigureAwait(false);
    }

    /// <summary>Status of the current or last migration (<c>query-migrate</c>): <c>active</c>, <c>completed</c>, <c>failed</c>, ...; empty when none ran.</summary>
    public static async Task<string> QueryMigrationStatusAsync(this QmpClient qmp, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        JsonElement m = await qmp.ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false);
        return m.ValueKind == JsonValueKind.Object && m.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String
            ? s.GetString() ?? ""
            : "";
    }

    /// <summary>Runs an HMP command (for features without a QMP equivalent, e.g. <c>hostfwd_add</c>) and returns its text output.</summary>
    public static async Task<string> HumanMonitorCommandAsync(this QmpClient qmp, string commandLine, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentException.ThrowIfNullOrWhiteSpace(commandLine);
        JsonElement result = await qmp.ExecuteAsync("human-monitor-command",
            new Dictionary<string, string> { ["command-line"] = commandLine }, ct).ConfigureAwait(false);
        return result.ValueKind == JsonValueKind.String ? result.GetString() ?? "" : result.GetRawText();
    }

    /// <summary>Parses the <c>return</c> value of <c>query-status</c>.</summary>
    internal static QmpRunStatus ParseRunStatus(JsonElement status)
    {
        if (status.ValueKind != JsonValueKind.Object ||
            !status.TryGetProperty("running", out var running) || running.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw new InvalidDataException($"query-status has no running flag: {status.GetRawText()}");
        string state = status.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() ?? "" : "";
        return new QmpRunStatus(running.GetBoolean(), state);
    }

    private static Task<JsonElement> Run(QmpClient qmp, string command, object? arguments, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        return qmp.ExecuteAsync(command, arguments, ct);
    }
}
