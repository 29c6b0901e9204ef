using System.Globalization;

namespace Bough.Vmm;

/// <summary>Which cgroup interface the host offers for the controllers Bough uses (memory, cpu, pids).</summary>
public enum CgroupVersion
{
    /// <summary>Neither: VMs cannot be bounded.</summary>
    None,
    /// <summary>One hierarchy per controller (<c>/sys/fs/cgroup/memory</c>, <c>cpu</c>, <c>pids</c>).</summary>
    V1,
    /// <summary>The unified hierarchy (<c>/sys/fs/cgroup/cgroup.controllers</c> exists).</summary>
    V2,
}

/// <summary>The cgroup directories of one VM (one per v1 controller, or one on v2).</summary>
/// <param name="Directories">Absolute paths of the VM's cgroup directories.</param>
public sealed record VmCgroup(IReadOnlyList<string> Directories)
{
    /// <summary>The files a process writes its pid into to join (<c>cgroup.procs</c> of each directory).</summary>
    public IReadOnlyList<string> ProcsFiles => Directories.Select(d => Path.Combine(d, "cgroup.procs")).ToList();
}

/// <summary>
/// The host's cgroups as this daemon sees them, and the VM cgroups made under the daemon's own cgroup
/// (<c>&lt;own&gt;/&lt;parent&gt;/&lt;name&gt;</c>): under the daemon's own, so whatever bounds the daemon (a
/// systemd unit, a container) still bounds its VMs. Supports v1 (one hierarchy per controller) and v2.
/// </summary>
public sealed class CgroupTree
{
    /// <summary>The v1 controllers Bough limits, in the order a process joins them (memory first: before QEMU allocates).</summary>
    internal static readonly string[] V1Controllers = ["memory", "cpu", "pids"];
    /// <summary>CFS period; the quota is whole CPUs of it.</summary>
    internal const long CpuPeriodMicros = 100_000;
    /// <summary>On v2, where the daemon moves itself when its own cgroup may not have both processes and children.</summary>
    internal const string DaemonLeaf = "bough-daemon";

    private readonly string _mountRoot;
    private readonly IReadOnlyDictionary<string, string> _own; // controller (v2: "") -> own cgroup directory

    private CgroupTree(CgroupVersion version, string mountRoot, IReadOnlyDictionary<string, string> own)
    {
        Version = version;
        _mountRoot = mountRoot;
        _own = own;
    }

    public CgroupVersion Version { get; }

    /// <summary>The host's cgroups for this process (<c>/sys/fs/cgroup</c>, <c>/proc/self/cgroup</c>).</summary>
    public static CgroupTree Detect()
    {
        string self;
        try { self = File.ReadAllText("/proc/self/cgroup"); }
        catch (IOException) { self = ""; }
        return Detect("/sys/fs/cgroup", self);
    }

    /// <summary>Detection over any mount root and <c>/proc/self/cgroup</c> text (tests use a directory tree of their own).</summary>
    internal static CgroupTree Detect(string mountRoot, string procSelfCgroup)
    {
        var lines = procSelfCgroup.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':', 3)).Where(p => p.Length == 3).ToList();
        if (File.Exists(Path.Combine(mountRoot, "cgroup.controllers")))
        {
            string own = lines.FirstOrDefault(p => p[0] == "0" && p[1].Length == 0)?[2] ?? "/";
            return new CgroupTree(CgroupVersion.V2, mountRoot, new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [""] = Join(mountRoot, own),
            });
        }
        var v1 = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string controller in V1Controllers)
        {
            string mount = Path.Combine(mountRoot, controller);
            if (!File.Exists(Path.Combine(mount, "cgroup.procs"))) return new CgroupTree(CgroupVersion.None, mountRoot, v1);
            string own = lines.FirstOrDefault(p => p[1].Split(',').Contains(controller))?[2] ?? "/";
            v1[controller] = Join(mount, own);
        }
        return new CgroupTree(CgroupVersion.V1, mountRoot, v1);
    }

    /// <summary>One line for <c>bough doctor</c>.</summary>
    public string Describe() => Version switch
    {
        CgroupVersion.V1 => $"v1 ({string.Join(", ", V1Controllers)} under {_mountRoot})",
        CgroupVersion.V2 => $"v2 (unified, {_own[""]})",
        _ => $"none usable under {_mountRoot} (need v2, or v1 {string.Join(", ", V1Controllers)})",
    };

    /// <summary>
    /// Makes (or re-makes) the cgroup <c>&lt;parent&gt;/&lt;name&gt;</c> with <paramref name="limits"/>. A leftover of
    /// the same name is reused with the new limits.
    /// </summary>
    /// <exception cref="IOException">The host has no usable cgroups, or a directory or limit could not be written.</exception>
    public VmCgroup Create(string parent, string name, CgroupLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ValidateName(parent);
        ValidateName(name);
        try
        {
            return Version switch
            {
                CgroupVersion.V1 => CreateV1(parent, name, limits),
                CgroupVersion.V2 => CreateV2(parent, name, limits),
                _ => throw new IOException("this host has no usable cgroups: " + Describe()),
            };
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"cannot create cgroup {parent}/{name} (the daemon must run as root): {e.Message}", e);
        }
    }

    private VmCgroup CreateV1(string parent, string name, CgroupLimits limits)
    {
        var dirs = new List<string>();
        foreach (string controller in V1Controllers)
        {
            string dir = Path.Combine(_own[controller], parent, name);
            Directory.CreateDirectory(dir);
            dirs.Add(dir);
        }
        string memory = dirs[0], cpu = dirs[1], pids = dirs[2];
        Write(memory, "memory.limit_in_bytes", limits.MemoryBytes);
        // With swap accounting on, also bound memory+swap, so the limit cannot be escaped into swap.
        TryWrite(memory, "memory.memsw.limit_in_bytes", limits.MemoryBytes);
        Write(cpu, "cpu.cfs_period_us", CpuPeriodMicros);
        Write(cpu, "cpu.cfs_quota_us", limits.Cpus * CpuPeriodMicros);
        Write(pids, "pids.max", limits.PidsMax);
        return new VmCgroup(dirs);
    }

    private VmCgroup CreateV2(string parent, string name, CgroupLimits limits)
    {
        string own = _own[""];
        string parentDir = Path.Combine(own, parent);
        Directory.CreateDirectory(parentDir);
        EnableControllers(own, allowMoveSelf: own != _mountRoot);
        EnableControllers(parentDir, allowMoveSelf: false);
        string dir = Path.Combine(parentDir, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "memory.max"), limits.MemoryBytes.ToString(CultureInfo.InvariantCulture));
        TryWrite(dir, "memory.swap.max", 0);
        File.WriteAllText(Path.Combine(dir, "cpu.max"),
            string.Create(CultureInfo.InvariantCulture, $"{limits.Cpus * CpuPeriodMicros} {CpuPeriodMicros}"));
        Write(dir, "pids.max", limits.PidsMax);
        return new VmCgroup([dir]);
    }

    /// <summary>
    /// v2 hands a controller to children only through <c>cgroup.subtree_control</c>, which a non-root cgroup that
    /// has processes of its own refuses (EBUSY). The daemon's own cgroup does (the daemon): it then moves itself
    /// into a leaf child, as systemd recommends for delegated subtrees, and tries again.
    /// </summary>
    private static void EnableControllers(string dir, bool allowMoveSelf)
    {
        string control = Path.Combine(dir, "cgroup.subtree_control");
        const string wanted = "+memory +cpu +pids";
        try
        {
            File.WriteAllText(control, wanted);
        }
        catch (IOException) when (allowMoveSelf)
        {
            string leaf = Path.Combine(dir, DaemonLeaf);
            Directory.CreateDirectory(leaf);
            File.WriteAllText(Path.Combine(leaf, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            File.WriteAllText(control, wanted);
        }
    }

    /// <summary>
    /// Removes a VM's cgroup directories. A cgroup can only go once its last task has exited, which the kernel
    /// may see a moment after the pidfd reported the exit: retried for up to <paramref name="wait"/>.
    /// </summary>
    /// <returns>True when none of them is left.</returns>
    public static async Task<bool> RemoveAsync(IReadOnlyList<string> directories, TimeSpan wait, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(directories);
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            bool all = true;
            foreach (string dir in directories) all &= TryRemove(dir);
            if (all || DateTime.UtcNow >= deadline) return all;
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Start-up: removes the VM cgroups under <paramref name="parent"/> whose name is not in <paramref name="keep"/>
    /// (VMs of sandboxes that no longer exist). A cgroup that still has processes is left and named in the result.
    /// With nothing to keep, the parent goes too once it is empty.
    /// </summary>
    public IReadOnlyList<string> RemoveStale(string parent, IReadOnlySet<string> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        ValidateName(parent);
        var busy = new List<string>();
        foreach (string own in _own.Values)
        {
            string parentDir = Path.Combine(own, parent);
            if (!Directory.Exists(parentDir)) continue;
            foreach (string dir in Directory.EnumerateDirectories(parentDir))
            {
                if (keep.Contains(Path.GetFileName(dir))) continue;
                if (!TryRemove(dir)) busy.Add(dir);
            }
            if (keep.Count == 0 && busy.Count == 0) TryRemove(parentDir);
        }
        return busy;
    }

    /// <summary>The VM cgroup directories <c>&lt;parent&gt;/&lt;name&gt;</c> would have (whether or not they exist).</summary>
    public IReadOnlyList<string> DirectoriesOf(string parent, string name)
    {
        ValidateName(parent);
        ValidateName(name);
        return _own.Values.Select(own => Path.Combine(own, parent, name)).ToList();
    }

    private static bool TryRemove(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: false);
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Names become path components; nothing may climb out of the parent.</summary>
    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name is "." or ".." || name.Contains('/', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
            throw new ArgumentException($"'{name}' is not a valid cgroup name.", nameof(name));
    }

    private static string Join(string mount, string cgroupPath) =>
        Path.TrimEndingDirectorySeparator(Path.Combine(mount, cgroupPath.TrimStart('/')));

    private static void Write(string dir, string file, long value) =>
        File.WriteAllText(Path.Combine(dir, file), value.ToString(CultureInfo.InvariantCulture));

    private static void TryWrite(string dir, string file, long value)
    {
        try
        {
            if (File.Exists(Path.Combine(dir, file))) Write(dir, file, value);
        }
        catch (IOException) { /* optional knob the kernel refused (e.g. swap accounting off) */ }
    }
}
