using Bough.HostSetup;
using Bough.Images.Rootfs;

namespace Bough.Images.Tests.Rootfs;

public sealed class ElfInterpreterTests
{
    private static string DynamicHostBinary() =>
        new[] { "/usr/bin/echo", "/bin/echo" }.First(p => File.Exists(p) && ElfInterpreter.Read(p) != null);

    [Fact]
    public async Task Patch_rewrites_in_place_with_nul_padding_and_the_kernel_runs_it()
    {
        using var tmp = new TempDir();
        var original = DynamicHostBinary();
        var copy = Path.Combine(tmp.Path, "echo");
        File.Copy(original, copy);
        var before = File.ReadAllBytes(copy);
        var oldInterp = ElfInterpreter.Read(copy)!;

        // A short path to the real loader (PT_INTERP is only as long as the original path).
        var linkDir = $"/tmp/bld{Guid.NewGuid():N}"[..14];
        Directory.CreateDirectory(linkDir);
        try
        {
            var loader = Path.Combine(linkDir, "ld.so");
            File.CreateSymbolicLink(loader, oldInterp);
            ElfInterpreter.Patch(copy, loader);
            Assert.Equal(loader, ElfInterpreter.Read(copy));

            var after = File.ReadAllBytes(copy);
            Assert.Equal(before.Length, after.Length);
            var diff = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
            Assert.NotEmpty(diff);
            // Only the interpreter bytes changed, and everything after the new path up to the old end is NUL.
            int start = diff[0];
            Assert.Equal(loader, System.Text.Encoding.ASCII.GetString(after, start - CommonPrefix(oldInterp, loader), loader.Length));
            int segStart = start - CommonPrefix(oldInterp, loader);
            Assert.All(Enumerable.Range(segStart + loader.Length, oldInterp.Length + 1 - loader.Length), i => Assert.Equal(0, after[i]));
            Assert.True(diff[^1] < segStart + oldInterp.Length + 1);

            File.SetUnixFileMode(copy, (UnixFileMode)0b111_101_101);
            var r = await CommandRunner.RunCheckedAsync(copy, ["patched", "ok"]);
            Assert.Equal("patched ok\n", r.Stdout);
        }
        finally
        {
            Directory.Delete(linkDir, true);
        }
    }

    [Fact]
    public void Too_long_paths_static_binaries_and_non_elf_files_are_refused()
    {
        using var tmp = new TempDir();
        var copy = Path.Combine(tmp.Path, "echo");
        File.Copy(DynamicHostBinary(), copy);
        var bytes = File.ReadAllBytes(copy);
        Assert.Throws<InvalidDataException>(() => ElfInterpreter.Patch(copy, "/" + new string('x', 200)));
        Assert.Throws<ArgumentException>(() => ElfInterpreter.Patch(copy, "relative/ld.so"));
        Assert.Equal(bytes, File.ReadAllBytes(copy));

        Assert.Null(ElfInterpreter.Read(HostRequirements.BusyboxPath)); // static
        var bb = Path.Combine(tmp.Path, "bb");
        File.Copy(HostRequirements.BusyboxPath, bb);
        Assert.Throws<InvalidDataException>(() => ElfInterpreter.Patch(bb, "/x"));

        var text = Path.Combine(tmp.Path, "script");
        File.WriteAllText(text, "#!/bin/sh\necho hi\n");
        Assert.Throws<InvalidDataException>(() => ElfInterpreter.Read(text));
    }

    private static int CommonPrefix(string a, string b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        return i;
    }
}
