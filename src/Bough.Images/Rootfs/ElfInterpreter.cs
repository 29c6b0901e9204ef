using System.Buffers.Binary;
using System.Text;

namespace Bough.Images.Rootfs;

/// <summary>
/// Reads and rewrites the PT_INTERP (dynamic loader path) of a 64-bit little-endian ELF in place.
/// The agent ships its own glibc loader under <c>/.bough/lib</c> because an image's libc may be older
/// than the host's, musl, or absent. Rewriting in place (same segment, NUL padded, sizes untouched)
/// keeps every offset valid, including the single-file bundle appended after the ELF image; the
/// kernel reads p_filesz bytes and only needs a NUL-terminated path inside them.
/// </summary>
public static class ElfInterpreter
{
    private const uint PtInterp = 3;

    /// <summary>The loader path, or null for a static ELF. Throws <see cref="InvalidDataException"/> for anything but ELF64 LE.</summary>
    public static string? Read(string path)
    {
        using var f = File.OpenRead(path);
        if (Find(f) is not { } seg) return null;
        var buf = ReadAt(f, seg.Offset, seg.Size);
        int nul = Array.IndexOf(buf, (byte)0);
        return Encoding.ASCII.GetString(buf, 0, nul < 0 ? buf.Length : nul);
    }

    /// <summary>Replaces the loader path; <paramref name="interpreter"/> plus its NUL must fit the existing segment.</summary>
    public static void Patch(string path, string interpreter)
    {
        if (interpreter.Length == 0 || interpreter[0] != '/' || interpreter.Any(c => c is '\0' or > '\x7e'))
            throw new ArgumentException($"'{interpreter}' is not an absolute ASCII path", nameof(interpreter));
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        var seg = Find(f) ?? throw new InvalidDataException($"{path} has no PT_INTERP (static binary?)");
        if (interpreter.Length + 1 > seg.Size)
            throw new InvalidDataException($"{path}: interpreter '{interpreter}' needs {interpreter.Length + 1} bytes, PT_INTERP has {seg.Size}");
        var bytes = new byte[seg.Size]; // zero-filled: the padding
        Encoding.ASCII.GetBytes(interpreter, bytes);
        f.Position = seg.Offset;
        f.Write(bytes);
        f.Flush(flushToDisk: true);
    }

    private readonly record struct Segment(long Offset, int Size);

    private static Segment? Find(FileStream f)
    {
        if (f.Length < 64) throw new InvalidDataException($"{f.Name} is not an ELF file (too short)");
        var hdr = ReadAt(f, 0, 64);
        if (hdr[0] != 0x7f || hdr[1] != 'E' || hdr[2] != 'L' || hdr[3] != 'F' || hdr[4] != 2 /* ELFCLASS64 */ || hdr[5] != 1 /* LE */)
            throw new InvalidDataException($"{f.Name} is not a 64-bit little-endian ELF");
        long phoff = BinaryPrimitives.ReadInt64LittleEndian(hdr.AsSpan(32));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(hdr.AsSpan(54));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(hdr.AsSpan(56));
        if (phentsize < 56 || phoff <= 0 || phoff + (long)phnum * phentsize > f.Length)
            throw new InvalidDataException($"{f.Name}: invalid program header table");
        for (int i = 0; i < phnum; i++)
        {
            var ph = ReadAt(f, phoff + (long)i * phentsize, 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != PtInterp) continue;
            long offset = BinaryPrimitives.ReadInt64LittleEndian(ph.AsSpan(8));
            long size = BinaryPrimitives.ReadInt64LittleEndian(ph.AsSpan(32)); // p_filesz
            if (offset <= 0 || size is < 2 or > 4096 || offset + size > f.Length)
                throw new InvalidDataException($"{f.Name}: invalid PT_INTERP segment");
            return new Segment(offset, (int)size);
        }
        return null;
    }

    private static byte[] ReadAt(FileStream f, long offset, int count)
    {
        var buf = new byte[count];
        f.Position = offset;
        f.ReadExactly(buf);
        return buf;
    }
}
