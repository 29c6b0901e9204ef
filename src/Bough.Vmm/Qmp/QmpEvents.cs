using System.Text.Json;

namespace Bough.Vmm;

/// <summary>The QMP events Bough reacts to, typed: names and the fields of their <c>data</c>.</summary>
public static class QmpEvents
{
    /// <summary>A virtio-serial port was opened or closed by the guest.</summary>
    public const string VserportChange = "VSERPORT_CHANGE";

    /// <summary>A migration (outgoing or incoming) changed status; needs the <c>events</c> migration capability.</summary>
    public const string Migration = "MIGRATION";

    /// <summary>
    /// Reads a <c>VSERPORT_CHANGE</c> event: <paramref name="id"/> is the port's device id (e.g.
    /// <see cref="QemuCommandLine.AgentPortDeviceId"/>), <paramref name="open"/> whether the guest has it open now.
    /// </summary>
    /// <returns>False for any other event, or one without both fields.</returns>
    public static bool TryGetVserportChange(this QmpEvent ev, out string id, out bool open)
    {
        ArgumentNullException.ThrowIfNull(ev);
        id = "";
        open = false;
        if (ev.Name != VserportChange || ev.Data is not { ValueKind: JsonValueKind.Object } data) return false;
        if (!data.TryGetProperty("id", out var idProp) || idProp.ValueKind != JsonValueKind.String) return false;
        if (!data.TryGetProperty("open", out var openProp) || openProp.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return false;
        id = idProp.GetString() ?? "";
        open = openProp.GetBoolean();
        return true;
    }

    /// <summary>Reads a <c>MIGRATION</c> event's status (<c>setup</c>, <c>active</c>, <c>completed</c>, <c>failed</c>, ...).</summary>
    /// <returns>False for any other event, or one without a status.</returns>
    public static bool TryGetMigrationStatus(this QmpEvent ev, out string status)
    {
        ArgumentNullException.ThrowIfNull(ev);
        status = "";
        if (ev.Name != Migration || ev.Data is not { ValueKind: JsonValueKind.Object } data ||
            !data.TryGetProperty("status", out var s) || s.ValueKind != JsonValueKind.String)
            return false;
        status = s.GetString() ?? "";
        return true;
    }
}
