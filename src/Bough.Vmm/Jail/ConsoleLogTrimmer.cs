using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm;

/// <summary>
/// Keeps a console log that QEMU appends to (<c>-chardev file,append=on</c>) to its last bytes: a guest can print
/// on its serial console without end. QEMU keeps writing at the end whatever happens to the file, so the head can
/// be cut from outside while it runs.
/// </summary>
/// <remarks>
/// The cut is <c>fallocate(FALLOC_FL_COLLAPSE_RANGE)</c> of whole blocks at the head: atomic against QEMU's
/// appends (both hold the inode lock), no copy. Filesystems without it (tmpfs, some overlays) get copy and
/// truncate instead, where bytes QEMU appends between the two steps can land before the kept tail.
/// </remarks>
public static class ConsoleLogTrimmer
{
    private const int EOPNOTSUPP = 95;
    private const long BlockSize = 4096;

    /// <summary>
    /// When <paramref name="path"/> is larger than <paramref name="maxBytes"/>, removes its head so that about
    /// <paramref name="keepBytes"/> (at most <paramref name="maxBytes"/>) of the newest output remain.
    /// </summary>
    /// <returns>How many bytes were removed (0 when under the cap or the file is missing).</returns>
    /// <exception cref="IOException">The file could not be trimmed.</exception>
    public static long Trim(string path, long maxBytes, long keepBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, BlockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(keepBytes);
        keepBytes = Math.Min(keepBytes, maxBytes);
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException) { return 0; }
        catch (DirectoryNotFoundException) { return 0; }
        using (file)
        {
            long length = RandomAccess.GetLength(file);
            if (length <= maxBytes) return 0;
            // Collapse must leave the end of the file in place, so cut whole blocks short of the kept tail.
            long cut = (length - keepBytes) / BlockSize * BlockSize;
            if (cut <= 0) return 0;
            int errno = Native.Fallocate(file, Native.FALLOC_FL_COLLAPSE_RANGE, 0, cut);
            if (errno == 0) return cut;
            if (errno is not (EOPNOTSUPP or 22 /* EINVAL: unaligned for this filesystem */))
                throw new IOException($"fallocate(COLLAPSE_RANGE) on {path} failed (errno {errno}).");
            return CopyTail(file, length, keepBytes);
        }
    }

    private static long CopyTail(SafeFileHandle file, long length, long keepBytes)
    {
        byte[] tail = new byte[keepBytes];
        int read = 0;
        while (read < tail.Length)
        {
            int n = RandomAccess.Read(file, tail.AsSpan(read), length - keepBytes + read);
            if (n == 0) break;
            read += n;
        }
        RandomAccess.SetLength(file, 0);
        RandomAccess.Write(file, tail.AsSpan(0, read), 0);
        return length - read;
    }
}
