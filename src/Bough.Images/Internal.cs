using System.Security.Cryptography;

namespace Bough.Images;

/// <summary>
/// Runs one piece of work for many concurrent callers: callers arriving while it runs share its
/// result. Each caller can cancel its own wait; the work itself is cancelled only when nobody waits.
/// </summary>
internal sealed class Coalescer<T>
{
    private readonly Lock _gate = new();
    private Task<T>? _running;
    private CancellationTokenSource? _cts;
    private int _waiters;

    public async Task<T> RunAsync(Func<CancellationToken, Task<T>> work, CancellationToken ct)
    {
        Task<T> task;
        CancellationTokenSource cts;
        lock (_gate)
        {
            if (_running is null || _running.IsCompleted || _cts!.IsCancellationRequested)
            {
                _cts = new CancellationTokenSource();
                var token = _cts.Token;
                _running = Task.Run(() => work(token), CancellationToken.None);
                _waiters = 0;
            }
            task = _running;
            cts = _cts;
            _waiters++;
        }
        try
        {
            return await task.WaitAsync(ct);
        }
        finally
        {
            lock (_gate)
            {
                if (ReferenceEquals(task, _running) && --_waiters == 0 && !task.IsCompleted)
                    cts.Cancel();
            }
        }
    }
}

/// <summary>
/// Cross-process exclusive lock on a file (flock underneath). Two builders in different processes,
/// or two instances in one, never build into the same place at once.
/// </summary>
internal sealed class FileLock : IDisposable
{
    private readonly FileStream _stream;
    private FileLock(FileStream s) => _stream = s;

    public static async Task<FileLock> AcquireAsync(string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        while (true)
        {
            try
            {
                return new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException)
            {
                await Task.Delay(200, ct);
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}

internal static class Files
{
    public static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct));
    }

    /// <summary>Writes a small file so readers see either the old or the new content, never half.</summary>
    public static void WriteAtomic(string path, string content)
    {
        var tmp = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }

    public static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Makes a fresh staging directory under <paramref name="parent"/> with a random name.</summary>
    public static string NewStagingDir(string parent)
    {
        var dir = Path.Combine(parent, Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static void WriteText(string path, string content, UnixFileMode? mode = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content.ReplaceLineEndings("\n"));
        if (mode is { } m) SetMode(path, m);
    }

    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, mode);
    }

    public const UnixFileMode Exec755 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
}
