using System.Text;

namespace Bough.Vmm;

/// <summary>
/// File names inside a VM's runtime directory. One place so the launcher, adoption after a
/// daemon restart and debugging tools agree on them.
/// </summary>
public sealed class RuntimeDirLayout
{
    public const string QmpSocketName = "qmp.sock";
    public const string AgentSocketName = "agent.sock";
    public const string PidFileName = "qemu.pid";
    public const string ConsoleLogName = "console.log";
    public const string ArgsFileName = "qemu.args";
    public const string MemoryFileName = "memory";
    /// <summary>QEMU's stdout and stderr (it runs detached; this is where a start-up failure says why).</summary>
    public const string QemuLogName = "qemu.log";
    public const string JailFileName = "jail.json";
    /// <summary>The write-tracking library QEMU was started with (see <c>Tracking/UffdPreload</c>).</summary>
    public const string PreloadLibraryName = "uffd-preload.so";

    /// <summary>sun_path is 108 bytes including the terminating NUL.</summary>
    public const int MaxUnixSocketPathBytes = 107;

    public RuntimeDirLayout(string runtimeDir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runtimeDir);
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(runtimeDir));
    }

    /// <summary>Absolute, normalised runtime directory (no trailing slash).</summary>
    public string Root { get; }
    public string QmpSocket => Path.Combine(Root, QmpSocketName);
    public string AgentSocket => Path.Combine(Root, AgentSocketName);
    public string PidFile => Path.Combine(Root, PidFileName);
    public string ConsoleLog => Path.Combine(Root, ConsoleLogName);
    public string ArgsFile => Path.Combine(Root, ArgsFileName);
    public string DefaultMemoryFile => Path.Combine(Root, MemoryFileName);
    public string QemuLog => Path.Combine(Root, QemuLogName);
    public string JailFile => Path.Combine(Root, JailFileName);
    public string PreloadLibrary => Path.Combine(Root, PreloadLibraryName);

    /// <summary>
    /// Fails early with a readable message: QEMU's own error for an over-long socket path is
    /// obscure, and the limit is easy to hit with deep state directories.
    /// </summary>
    public void ValidateSocketPaths()
    {
        foreach (var path in new[] { QmpSocket, AgentSocket })
        {
            int bytes = Encoding.UTF8.GetByteCount(path);
            if (bytes > MaxUnixSocketPathBytes)
            {
                throw new ArgumentException(
                    $"Unix socket path '{path}' is {bytes} bytes; the limit is {MaxUnixSocketPathBytes}. " +
                    "Use a shorter runtime directory.", nameof(VmSpec.RuntimeDir));
            }
        }
    }
}
