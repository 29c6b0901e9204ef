using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Bough.Snapshots;

/// <summary>
/// Reads scattered pages of another process into one contiguous buffer with a single <c>process_vm_readv</c> per batch
/// (up to <see cref="MaxRuns"/> runs), instead of one <c>pread</c> of <c>/proc/PID/mem</c> per run: a capture with
/// written-page tracking copies thousands of small runs inside its stop window, where the per-call cost dominated.
/// Falls back to <c>/proc/PID/mem</c> when the call is refused or comes up short, so a failure there is reported the
/// way it always was.
/// </summary>
internal static class ProcessMemory
{
    /// <summary>Remote runs per call (IOV_MAX).</summary>
    public const int MaxRuns = 1024;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "process_vm_readv")]
    private static extern nint ProcessVmReadv(int pid, in IoVec local, nuint localCount, [In] IoVec[] remote, nuint remoteCount, nuint flags);

    /// <summary>
    /// Fills <paramref name="count"/> bytes of <paramref name="pinned"/> (a pinned array) from <paramref name="offset"/>
    /// with the runs <paramref name="remote"/>[0..<paramref name="runs"/>) of process <paramref name="pid"/>, in order.
    /// </summary>
    /// <exception cref="SnapshotException">The memory could not be read either way.</exception>
    public static void Read(int pid, byte[] pinned, int offset, int count, IoVec[] remote, int runs, SafeFileHandle procMem)
    {
        var local = new IoVec { Base = Marshal.UnsafeAddrOfPinnedArrayElement(pinned, offset), Length = (nuint)count };
        if (ProcessVmReadv(pid, local, 1, remote, (nuint)runs, 0) == count) return;
        int at = offset;
        for (int r = 0; r < runs; r++)
        {
            int length = (int)remote[r].Length;
            GuestRamMapping.ReadExactly(procMem, pinned.AsSpan(at, length), remote[r].Base, $"guest RAM of PID {pid}");
            at += length;
        }
    }
}
