namespace Bough.Images.Concurrency;

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
