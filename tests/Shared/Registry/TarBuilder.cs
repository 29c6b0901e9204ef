using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;

namespace Bough.TestSupport.Registry;

public enum LayerCompression { None, Gzip, Zstd }

/// <summary>One entry of a test layer. Names are written verbatim, so tests can craft hostile ones.</summary>
public sealed record TarItem(TarEntryType Type, string Name, byte[]? Content = null, string? LinkName = null,
    UnixFileMode Mode = (UnixFileMode)0b110_100_100, int Uid = 0, int Gid = 0, DateTimeOffset? MTime = null)
{
    public static readonly DateTimeOffset DefaultTime = new(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static TarItem File(string name, string content, UnixFileMode mode = (UnixFileMode)0b110_100_100, int uid = 0, int gid = 0) =>
        new(TarEntryType.RegularFile, name, System.Text.Encoding.UTF8.GetBytes(content), null, mode, uid, gid);
    public static TarItem File(string name, byte[] content, UnixFileMode mode = (UnixFileMode)0b111_101_101) =>
        new(TarEntryType.RegularFile, name, content, null, mode);
    public static TarItem Dir(string name, UnixFileMode mode = (UnixFileMode)0b111_101_101, int uid = 0, int gid = 0) =>
        new(TarEntryType.Directory, name, null, null, mode, uid, gid);
    public static TarItem Symlink(string name, string target) =>
        new(TarEntryType.SymbolicLink, name, null, target, (UnixFileMode)0b111_111_111);
    public static TarItem HardLink(string name, string target) => new(TarEntryType.HardLink, name, null, target);
    public static TarItem CharDevice(string name) => new(TarEntryType.CharacterDevice, name, Mode: (UnixFileMode)0b110_110_110);
    public static TarItem Fifo(string name) => new(TarEntryType.Fifo, name);
    /// <summary>OCI whiteout: hides <paramref name="path"/> of lower layers.</summary>
    public static TarItem Whiteout(string path)
    {
        var slash = path.LastIndexOf('/');
        return File(slash < 0 ? ".wh." + path : path[..(slash + 1)] + ".wh." + path[(slash + 1)..], "");
    }
    /// <summary>OCI opaque marker: empties <paramref name="dir"/> of lower-layer contents.</summary>
    public static TarItem Opaque(string dir) => File(dir.TrimEnd('/') + "/.wh..wh..opq", "");
}

/// <summary>Writes tar layers (PAX) from <see cref="TarItem"/>s, optionally gzip- or zstd-compressed.</summary>
public static class TarBuilder
{
    public static byte[] Tar(IEnumerable<TarItem> items)
    {
        using var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var item in items)
            {
                var e = new PaxTarEntry(item.Type, item.Name)
                {
                    Mode = item.Mode, Uid = item.Uid, Gid = item.Gid, ModificationTime = item.MTime ?? TarItem.DefaultTime,
                };
                if (item.LinkName is not null) e.LinkName = item.LinkName;
                if (item.Type is TarEntryType.CharacterDevice or TarEntryType.BlockDevice) { e.DeviceMajor = 1; e.DeviceMinor = 3; }
                if (item.Content is not null && item.Type == TarEntryType.RegularFile) e.DataStream = new MemoryStream(item.Content);
                writer.WriteEntry(e);
            }
        }
        return ms.ToArray();
    }

    public static byte[] Compress(byte[] tar, LayerCompression compression) => compression switch
    {
        LayerCompression.None => tar,
        LayerCompression.Gzip => Gzip(tar),
        LayerCompression.Zstd => Zstd(tar),
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    public static byte[] Layer(IEnumerable<TarItem> items, LayerCompression compression) => Compress(Tar(items), compression);

    private static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>Through the host's zstd (the product decompresses with it too; no zstd package is available).</summary>
    private static byte[] Zstd(byte[] data)
    {
        var psi = new ProcessStartInfo("zstd")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            ArgumentList = { "-q", "-c", "-" },
        };
        using var p = Process.Start(psi)!;
        var stdout = Task.Run(() => { using var ms = new MemoryStream(); p.StandardOutput.BaseStream.CopyTo(ms); return ms.ToArray(); });
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(data);
        p.StandardInput.Close();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException("zstd failed: " + stderr.Result);
        return stdout.Result;
    }
}
