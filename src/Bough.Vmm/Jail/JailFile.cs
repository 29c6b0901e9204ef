using System.Text.Json;

namespace Bough.Vmm;

/// <summary>
/// What a daemon must know about a running VM beyond its command line to keep it bounded after adopting it
/// (<c>jail.json</c> in the runtime dir): its cgroup directories (removed once it is gone) and the console cap.
/// Written before QEMU starts, so a crash mid-start still leaves it for clean-up.
/// </summary>
/// <param name="CgroupDirectories">The VM's cgroup directories (empty: none).</param>
/// <param name="ConsoleLogMaxBytes">The console cap (0: unbounded).</param>
internal sealed record JailFile(IReadOnlyList<string> CgroupDirectories, long ConsoleLogMaxBytes)
{
    public static readonly JailFile None = new([], 0);

    public void Write(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this));

    /// <summary>The file's content, or <see cref="None"/> when it is missing or unreadable (a VM from before jails).</summary>
    public static JailFile Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<JailFile>(File.ReadAllText(path)) is { CgroupDirectories: not null } j ? j : None;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return None;
        }
    }
}
