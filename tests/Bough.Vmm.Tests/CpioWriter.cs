using System.Text;

namespace Bough.Vmm.Tests;

/// <summary>
/// Minimal "newc" cpio writer, enough for an initramfs. Written in-process so the fixture can
/// add a /dev/console device node without root and without the cpio tool.
/// </summary>
internal sealed class CpioWriter(Stream output)
{
    private const int S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFCHR = 0x2000, S_IFLNK = 0xA000;
    private int _ino = 1;
    private long _written;

    public void Directory(string name, int perm = 0x1ED /* 0755 */) => Entry(name, S_IFDIR | perm, [], 0, 0, 2);
    public void File(string name, byte[] data, int perm = 0x1ED) => Entry(name, S_IFREG | perm, data, 0, 0, 1);
    public void CharDevice(string name, int major, int minor, int perm = 0x180 /* 0600 */) => Entry(name, S_IFCHR | perm, [], major, minor, 1);
    public void Symlink(string name, string target) => Entry(name, S_IFLNK | 0x1FF, Encoding.UTF8.GetBytes(target), 0, 0, 1);
    public void Finish() => Entry("TRAILER!!!", 0, [], 0, 0, 1, ino: 0);

    private void Entry(string name, int mode, byte[] data, int rdevMajor, int rdevMinor, int nlink, int? ino = null)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        var header = new StringBuilder("070701");
        foreach (long field in new long[] { ino ?? _ino++, mode, 0, 0, nlink, 0, data.Length, 0, 0, rdevMajor, rdevMinor, nameBytes.Length, 0 })
            header.Append(field.ToString("x8"));
        Write(Encoding.ASCII.GetBytes(header.ToString()));
        Write(nameBytes);
        Pad();
        Write(data);
        Pad();
    }

    private void Write(byte[] bytes)
    {
        output.Write(bytes);
        _written += bytes.Length;
    }

    private void Pad()
    {
        while (_written % 4 != 0) Write([0]);
    }
}
