using System.Diagnostics;
using System.Globalization;
using Bough.HostSetup;
using Bough.Vmm;
using Bough.Vmm.Tracking;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Snapshots.Tests;

/// <summary>
/// Written-page tracking on a plain process standing in for QEMU (no VM): a Python child that maps a file
/// <c>MAP_PRIVATE</c>, as QEMU maps guest RAM, started with the real preload library, and writes or reads pages on
/// command. The tracker takes its userfaultfd as it takes QEMU's.
/// </summary>
public sealed class TrackingChildProcessTests : IDisposable
{
    private const int Pages = 512;
    private const int PageSize = GuestRamMapping.PageSize;
    private readonly string _dir = Directory.CreateTempSubdirectory("bough-track-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The child: prints "ready", then per line "w P..." increments byte 7 of each page P, "z P..." zeroes it, "r P..." reads.</summary>
    private const string ChildScript = """
        import mmap, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        m = mmap.mmap(fd, int(sys.argv[2]) * 4096, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        print("ready", flush=True)
        for line in sys.stdin:
            cmd, *pages = line.split()
            for p in map(int, pages):
                if cmd == "w": m[p * 4096 + 7] = (m[p * 4096 + 7] + 1) % 256
                elif cmd == "z": m[p * 4096 + 7] = 0
                else: m[p * 4096]
            print("ok", flush=True)
        """;

    private sealed class Child : IDisposable
    {
        private readonly Process _p;
        public Child(Process p) => _p = p;
        public int Pid => _p.Id;

        public Task<string?> ReadLineAsync() => _p.StandardOutput.ReadLineAsync();

        public async Task DoAsync(string cmd, params int[] pages)
        {
            await _p.StandardInput.WriteLineAsync($"{cmd} {string.Join(' ', pages)}");
            await _p.StandardInput.FlushAsync();
            Assert.Equal("ok", await _p.StandardOutput.ReadLineAsync());
        }

        public void Dispose()
        {
            try { _p.Kill(); _p.WaitForExit(); } catch (InvalidOperationException) { }
            _p.Dispose();
        }
    }

    private static string RealPython()
    {
        // A launcher script in between (pyenv) would take the preload itself; run the interpreter directly.
        var psi = new ProcessStartInfo("python3", ["-c", "import sys; print(sys.executable)"]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        string exe = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return exe;
    }

    private async Task<(Child Child, string File)> StartChildAsync(bool preload, string shell = "")
    {
        string file = Path.Combine(_dir, "ram");
        using (var fs = File.Create(file)) fs.SetLength((long)Pages * PageSize);
        string lib = Path.Combine(_dir, "uffd-preload.so");
        Assert.True(UffdPreload.WriteTo(lib));
        string script = Path.Combine(_dir, "child.py");
        File.WriteAllText(script, ChildScript);
        string python = RealPython();
        var psi = shell.Length == 0
            ? new ProcessStartInfo(python, [script, file, Pages.ToString(CultureInfo.InvariantCulture)])
            : new ProcessStartInfo("/bin/bash", ["-c", shell, "bash", python, script, file, Pages.ToString(CultureInfo.InvariantCulture)]);
        psi.RedirectStandardInput = psi.RedirectStandardOutput = true;
        if (preload) psi.Environment["BOUGH_PRELOAD"] = lib;
        if (preload && shell.Length == 0) psi.Environment["LD_PRELOAD"] = lib;
        var child = new Child(Process.Start(psi)!);
        Assert.Equal("ready", await child.ReadLineAsync());
        return (child, file);
    }

    private static WrittenPageTracker Arm(int pid) => WrittenPageTracker.Arm(pid, Native.PidfdOpen(pid), NullLogger.Instance);

    /// <summary>One capture's session with one scan; the pages pending since the baseline.</summary>
    private static List<long> Scan(WrittenPageTracker tracker, GuestRamMapping mapping, string? expectedBaseline, string? commit) =>
        [.. ScanFull(tracker, mapping, expectedBaseline, commit).Pending];

    private static WrittenPages ScanFull(WrittenPageTracker tracker, GuestRamMapping mapping, string? expectedBaseline, string? commit)
    {
        using var session = tracker.TryBeginCapture(mapping.TrackingSegments()) ?? throw new InvalidOperationException(tracker.Status);
        Assert.Equal(expectedBaseline, session.Baseline);
        var pages = session.Scan() ?? throw new InvalidOperationException(tracker.Status);
        if (commit is not null) session.Commit(commit);
        return pages;
    }

    [Fact]
    public async Task Scans_report_exactly_the_pages_written_since_the_last_committed_capture()
    {
        var (child, file) = await StartChildAsync(preload: true);
        using (child)
        using (var tracker = Arm(child.Pid))
        {
            Assert.True(tracker.IsArmed, tracker.Status);
            await child.DoAsync("w", 1, 2);
            var mapping = GuestRamMapping.Find(child.Pid, file);

            // The first scan has no baseline and reports at least what was written; it starts the tracking.
            var first = Scan(tracker, mapping, expectedBaseline: null, commit: "t1");
            Assert.Contains(1L, first);
            Assert.Contains(2L, first);
            Assert.Empty(Scan(tracker, mapping, "t1", commit: "t1"));

            // Writes (also to pages never touched before, and twice to one page) count; reads do not.
            await child.DoAsync("w", 3, 70, 71, 3, Pages - 1);
            await child.DoAsync("r", 100, 101, 2);
            // A capture that fails after its scan does not commit: its pages stay pending.
            Assert.Equal([3L, 70, 71, Pages - 1], Scan(tracker, mapping, "t1", commit: null));
            await child.DoAsync("w", 5);
            var afterFailure = ScanFull(tracker, mapping, "t1", commit: "t3");
            Assert.Equal([3L, 5, 70, 71, Pages - 1], afterFailure.Pending);
            Assert.Equal([5L], afterFailure.Reported); // this scan's own: written since the previous scan
            Assert.Empty(Scan(tracker, mapping, "t3", commit: "t4"));

            // One session at a time.
            using (var open = tracker.TryBeginCapture(mapping.TrackingSegments()))
            {
                Assert.NotNull(open);
                Assert.Null(tracker.TryBeginCapture(mapping.TrackingSegments()));
            }
        }
    }

    [Fact]
    public async Task Doctor_says_tracking_works_exactly_when_a_tracker_can_track_a_process()
    {
        var check = WriteTrackingCheck.Run();
        Assert.True(check.Ok); // never fatal: captures fall back to the full scan
        var (child, file) = await StartChildAsync(preload: true);
        using (child)
        using (var tracker = Arm(child.Pid))
        {
            using var session = tracker.TryBeginCapture(GuestRamMapping.Find(child.Pid, file).TrackingSegments());
            bool works = session?.Scan() is not null;
            Assert.True(works == !check.Warning, $"doctor: {check.Detail}; tracker: {tracker.Status}");
        }
        // This host kind (Linux 6.18) has it: the figures in docs/benchmarks.md depend on it.
        Assert.False(check.Warning, check.Detail);
    }

    [Fact]
    public async Task The_full_scan_does_not_count_the_markers_tracking_leaves_on_untouched_pages()
    {
        var (child, file) = await StartChildAsync(preload: true);
        using (child)
        using (var tracker = Arm(child.Pid))
        {
            await child.DoAsync("w", 10, 11);
            await child.DoAsync("r", 20);
            var mapping = GuestRamMapping.Find(child.Pid, file);
            Assert.Equal([10L, 11], mapping.ChangedPages());
            Scan(tracker, mapping, null, "t1"); // leaves uffd-wp markers on every page never touched
            await child.DoAsync("w", 12);
            Assert.Equal([10L, 11, 12], mapping.ChangedPages());
        }
    }

    [Fact]
    public async Task Copying_scattered_pages_batches_them_in_order_and_sorts_out_zero_pages()
    {
        var (child, file) = await StartChildAsync(preload: false);
        using (child)
        {
            int[] written = [.. Enumerable.Range(0, 150).Select(k => k * 3 % Pages).Distinct().Order()];
            await child.DoAsync("w", written);
            await child.DoAsync("w", 448, 448); // written twice: byte 2
            var mapping = GuestRamMapping.Find(child.Pid, file);
            long[] wanted = [.. Enumerable.Range(0, Pages).Select(p => (long)p).Where(p => p % 2 == 0 || p % 3 == 0)];
            // 64 KiB in memory, the rest through the spill file.
            using var pages = new CopiedPages(16 * PageSize, Path.Combine(_dir, "spill"));
            pages.Collect(mapping, wanted, CancellationToken.None);
            Assert.Equal(wanted.Length, pages.ChangedCount);
            Assert.Equal(wanted.Where(p => written.Contains((int)p) || p == 448), pages.NonZero);
            Assert.Equal(wanted.Where(p => !written.Contains((int)p) && p != 448), pages.Zero);
            var page = new byte[PageSize];
            for (int k = 0; k < pages.NonZero.Count; k++)
            {
                pages.Read(k, page);
                Assert.Equal(pages.NonZero[k] == 448 ? 2 : 1, page[7]);
                Assert.Equal(PageSize - 1, page.AsSpan().Count((byte)0));
            }

            // A late pass (pages written after the first pass's scan) replaces those pages, adds new ones in order, and
            // a page zeroed since moves to the zero list.
            await child.DoAsync("w", 448, 0, 1);
            await child.DoAsync("z", 3);
            pages.CollectLate(mapping, [0L, 1, 2, 3, 448], CancellationToken.None);
            Assert.Equal(wanted.Length + 1, pages.ChangedCount); // page 1 was not in the first pass
            Assert.Contains(1L, pages.NonZero);
            Assert.Contains(3L, pages.Zero);
            Assert.DoesNotContain(3L, pages.NonZero);
            Assert.Contains(2L, pages.Zero);
            for (int k = 0; k < pages.NonZero.Count; k++)
            {
                pages.Read(k, page);
                long p = pages.NonZero[k];
                Assert.Equal(p == 448 ? 3 : p == 0 ? 2 : 1, page[7]);
            }
            Assert.Equal(pages.NonZero.Order(), pages.NonZero);
            Assert.Equal(pages.Zero.Order(), pages.Zero);
            // Releasing the contents keeps the counts the capture reports afterwards.
            long count = pages.ChangedCount;
            pages.Dispose();
            Assert.Equal(count, pages.ChangedCount);
            Assert.True(pages.PreCopiedCount > 0);

            // When process_vm_readv is refused (here: a pid it cannot use), the same bytes come from /proc/PID/mem.
            var pinned = GC.AllocateUninitializedArray<byte>(2 * PageSize, pinned: true);
            ProcessMemory.IoVec[] runs =
            [
                new() { Base = (nint)mapping.AddressOf(0), Length = PageSize },
                new() { Base = (nint)mapping.AddressOf(6), Length = PageSize },
            ];
            using var mem = mapping.OpenMemory();
            ProcessMemory.Read(-1, pinned, 0, 2 * PageSize, runs, 2, mem);
            Assert.Equal(2, pinned[7]);
            Assert.Equal(1, pinned[PageSize + 7]);
        }
    }

    [Fact]
    public async Task Without_the_descriptor_the_tracker_is_unavailable_and_says_why()
    {
        // No preload: the child has no descriptor 1000.
        var (plain, _) = await StartChildAsync(preload: false);
        using (plain)
        using (var tracker = Arm(plain.Pid))
        {
            Assert.False(tracker.IsArmed);
            Assert.Contains("no descriptor 1000", tracker.Status, StringComparison.Ordinal);
            Assert.Null(tracker.TryBeginCapture([new GuestRamSegment(0x10000, 0, PageSize)]));
        }

        // Descriptor 1000 already taken when the library loads: it leaves it alone, and the tracker will not use it.
        var (taken, _) = await StartChildAsync(preload: true,
            shell: "exec 1000</dev/null; LD_PRELOAD=$BOUGH_PRELOAD exec \"$@\"");
        using (taken)
        {
            Assert.Equal("/dev/null", new FileInfo($"/proc/{taken.Pid}/fd/1000").LinkTarget);
            using var tracker = Arm(taken.Pid);
            Assert.False(tracker.IsArmed);
            Assert.Contains("not a userfaultfd", tracker.Status, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_library_does_nothing_when_the_kernel_refuses_a_userfaultfd()
    {
        // An unprivileged process gets no userfaultfd while vm.unprivileged_userfaultfd is 0: the library must leave
        // the program running normally, without descriptor 1000. (Root, as QEMU starts, gets one.)
        string lib = Path.Combine(_dir, "uffd-preload.so");
        Assert.True(UffdPreload.WriteTo(lib));
        // Written owner-only (0600); the unprivileged probe below must be able to load it, or it would prove nothing.
        File.SetUnixFileMode(lib, (UnixFileMode)0b110_100_100);
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);
        bool unprivilegedAllowed = File.ReadAllText("/proc/sys/vm/unprivileged_userfaultfd").Trim() == "1";
        const string Probe = "[ -e /proc/$$/fd/1000 ] && echo has || echo none";
        Assert.Equal(unprivilegedAllowed ? "has" : "none",
            await RunAsync("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", $"LD_PRELOAD={lib}", "/bin/sh", "-c", Probe));
        Assert.Equal("has", await RunAsync("env", $"LD_PRELOAD={lib}", "/bin/sh", "-c", Probe));
    }

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string stdout = await p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"{file} exited {p.ExitCode}: {stderr}");
        return stdout.Trim();
    }

    [Fact]
    public async Task A_registration_the_kernel_refuses_disarms_the_tracker()
    {
        var (child, _) = await StartChildAsync(preload: true);
        using (child)
        using (var tracker = Arm(child.Pid))
        {
            Assert.True(tracker.IsArmed, tracker.Status);
            // Nothing is mapped there in the child.
            Assert.Null(tracker.TryBeginCapture([new GuestRamSegment(0x1000, 0, PageSize)]));
            Assert.False(tracker.IsArmed);
            Assert.StartsWith("disarmed: registration failed", tracker.Status, StringComparison.Ordinal);
        }
    }
}
