using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;
using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// inotify on one directory (and, recursively, on every subdirectory present or created later,
/// never through symlinks), read by a dedicated thread into a bounded queue of events named
/// relative to the watched directory. Mapping (as Go's fsnotify, which E2B's envd uses): create
/// and moved-to → create, modify → write, attrib → chmod, delete → remove, moved-from → rename.
/// </summary>
/// <remarks>
/// Memory is bounded twice: the queue holds at most <see cref="QueueCapacity"/> events and the
/// thread stops reading while it is full, so a host that does not consume lets the kernel's own
/// queue fill; the kernel then reports an overflow, which ends the watch with io_error (events were
/// lost, the client must rescan) instead of growing anything here. The queue completes without
/// error when the watched directory itself is deleted or moved away.
/// </remarks>
internal sealed unsafe class InotifyWatcher : IDisposable
{
    public const int MaxWatchedDirectories = 8192;
    private const int QueueCapacity = 4096;
    private const uint EventMask = Libc.IN_CREATE | Libc.IN_DELETE | Libc.IN_MODIFY | Libc.IN_ATTRIB | Libc.IN_MOVED_FROM
        | Libc.IN_MOVED_TO | Libc.IN_DELETE_SELF | Libc.IN_MOVE_SELF | Libc.IN_ONLYDIR;

    private readonly int _fd;
    private readonly string _root;
    private readonly bool _recursive;
    private readonly Dictionary<int, string> _dirs = []; // watch descriptor → directory relative to the root ("" = root)
    private readonly Channel<WatchEventDto> _events = Channel.CreateBounded<WatchEventDto>(
        new BoundedChannelOptions(QueueCapacity) { SingleReader = true, SingleWriter = true });
    private readonly WakeFd _wake = new();
    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;
    private int _rootWd = -1;

    public InotifyWatcher(string root, bool recursive)
    {
        _root = root;
        _recursive = recursive;
        _fd = Libc.inotify_init1(Libc.IN_NONBLOCK | Libc.IN_CLOEXEC);
        if (_fd < 0)
        {
            _wake.Dispose();
            throw AgentError.FromErrno(Libc.Errno, "inotify_init1", root);
        }
        try
        {
            _rootWd = AddWatch(root, "", followLink: true) ?? throw new AgentError(ErrorCodes.FileNotFound, $"watch {root}: vanished");
            if (recursive) AddSubdirectories(root, "");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ChannelReader<WatchEventDto> Events => _events.Reader;

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "watch" };
        _thread.Start();
    }

    /// <summary>Adds a watch; null when the directory vanished (a subdirectory racing with its removal).</summary>
    private int? AddWatch(string path, string relative, bool followLink)
    {
        if (_dirs.Count >= MaxWatchedDirectories)
            throw new AgentError(ErrorCodes.TooLarge, $"watch {_root}: more than {MaxWatchedDirectories} directories");
        int wd = Libc.inotify_add_watch(_fd, path, EventMask | (followLink ? 0 : Libc.IN_DONT_FOLLOW));
        if (wd < 0)
        {
            int errno = Libc.Errno;
            if (relative.Length > 0 && errno is Libc.ENOENT or Libc.ENOTDIR or Libc.EACCES) return null;
            if (errno == Libc.ENOSPC) throw new AgentError(ErrorCodes.TooLarge, $"watch {path}: the guest's inotify watch limit is reached");
            throw AgentError.FromErrno(errno, "watch", path);
        }
        _dirs[wd] = relative;
        return wd;
    }

    private void AddSubdirectories(string path, string relative)
    {
        var options = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true, RecurseSubdirectories = false };
        string[] children;
        try { children = Directory.GetDirectories(path, "*", options); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var child in children)
        {
            if (FileStat.TryGet(child, false, out var st) != 0 || !st.IsDirectory) continue; // symlinks are not entered
            string rel = Join(relative, Path.GetFileName(child));
            if (AddWatch(child, rel, followLink: false) != null) AddSubdirectories(child, rel);
        }
    }

    private void Run()
    {
        var buffer = new byte[64 * 1024];
        var fds = stackalloc Libc.PollFd[2];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                fds[0] = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
                fds[1] = new Libc.PollFd { Fd = _wake.Fd, Events = Libc.POLLIN };
                if (Libc.poll(fds, 2, -1) < 0 && Libc.Errno != Libc.EINTR) throw new IOException($"poll: {Libc.StrError(Libc.Errno)}");
                if (fds[1].Revents != 0) _wake.Drain();
                if (fds[0].Revents == 0) continue;
                nint n;
                fixed (byte* p = buffer) n = Libc.read(_fd, p, buffer.Length);
                if (n < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR) continue;
                if (n <= 0) throw new IOException($"read inotify: {Libc.StrError(Libc.Errno)}");
                if (!Dispatch(buffer.AsSpan(0, (int)n)))
                {
                    _events.Writer.TryComplete();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            _events.Writer.TryComplete(e as AgentError ?? new AgentError(ErrorCodes.IoError, e.Message));
            return;
        }
        _events.Writer.TryComplete();
    }

    /// <summary>Handles one read's worth of events; false when the watch is over (its root went away).</summary>
    private bool Dispatch(ReadOnlySpan<byte> data)
    {
        while (data.Length >= 16)
        {
            int wd = BinaryPrimitives.ReadInt32LittleEndian(data);
            uint mask = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
            var nameBytes = data.Slice(16, len);
            int nul = nameBytes.IndexOf((byte)0);
            string name = Encoding.UTF8.GetString(nul < 0 ? nameBytes : nameBytes[..nul]);
            data = data[(16 + len)..];

            if ((mask & Libc.IN_Q_OVERFLOW) != 0)
                throw new AgentError(ErrorCodes.IoError, $"watch {_root}: the guest's inotify queue overflowed, events were lost");
            if ((mask & Libc.IN_IGNORED) != 0)
            {
                _dirs.Remove(wd);
                if (wd == _rootWd) return false;
                continue;
            }
            if (wd == _rootWd && (mask & (Libc.IN_DELETE_SELF | Libc.IN_MOVE_SELF)) != 0) return false;
            if (name.Length == 0 || !_dirs.TryGetValue(wd, out var dir)) continue; // a subdirectory's own events: its parent reports them
            string relative = Join(dir, name);
            bool isDir = (mask & Libc.IN_ISDIR) != 0;
            string? type = null;
            if ((mask & (Libc.IN_CREATE | Libc.IN_MOVED_TO)) != 0)
            {
                type = WatchEventTypes.Create;
                if (isDir && _recursive)
                {
                    string full = Path.Combine(_root, relative);
                    if (AddWatch(full, relative, followLink: false) != null) AddSubdirectories(full, relative);
                }
            }
            else if ((mask & Libc.IN_MODIFY) != 0) type = WatchEventTypes.Write;
            else if ((mask & Libc.IN_ATTRIB) != 0) type = WatchEventTypes.Chmod;
            else if ((mask & Libc.IN_DELETE) != 0) type = WatchEventTypes.Remove;
            else if ((mask & Libc.IN_MOVED_FROM) != 0)
            {
                type = WatchEventTypes.Rename;
                if (isDir && _recursive) ForgetSubtree(relative);
            }
            // Deeper than PATH_MAX below the root: not addressable through the absolute-path API, and too big for a REPLY.
            if (type != null && relative.Length <= ProtocolConstants.MaxPathLength) Publish(new WatchEventDto { Name = relative, Type = type });
        }
        return true;
    }

    /// <summary>A directory moved away: its watches would report under a stale name (a move within the tree re-adds them).</summary>
    private void ForgetSubtree(string relative)
    {
        foreach (var (wd, dir) in _dirs.ToList())
            if (dir == relative || dir.StartsWith(relative + "/", StringComparison.Ordinal))
            {
                Libc.inotify_rm_watch(_fd, wd);
                _dirs.Remove(wd);
            }
    }

    /// <summary>Queues an event, waiting (and so not reading inotify) while the queue is full.</summary>
    private void Publish(WatchEventDto e)
    {
        while (!_events.Writer.TryWrite(e))
            _events.Writer.WaitToWriteAsync(_stop.Token).AsTask().GetAwaiter().GetResult();
    }

    private static string Join(string dir, string name) => dir.Length == 0 ? name : $"{dir}/{name}";

    public void Dispose()
    {
        _stop.Cancel();
        _wake.Signal();
        _thread?.Join(TimeSpan.FromSeconds(5));
        if (_fd >= 0) Libc.close(_fd);
        _wake.Dispose();
        _stop.Dispose();
    }
}
