using Bough.HostSetup;
using Bough.Images.Oci;
using Bough.Images.Publish;
using Bough.TestSupport.Registry;

namespace Bough.Images.Tests.Publish;

/// <summary>
/// A flattened image root holds the image's setuid-root files as real host files: while they sit in
/// staging, no other user of the host may reach them. Checked with the real permission check, as
/// <c>nobody</c> through setpriv, not only by reading modes.
/// </summary>
public sealed class StagingPrivacyTests : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task A_setuid_file_flattened_into_staging_is_out_of_reach_of_other_users()
    {
        var builder = new GuestImageBuilder(Path.Combine(_tmp.Path, "data"), "/bin/true", HostRequirements.BusyboxPath);
        var root = builder.NewStagingDir();
        var work = Path.GetDirectoryName(root)!;
        var layer = Path.Combine(_tmp.Path, "layer");
        await File.WriteAllBytesAsync(layer, TarBuilder.Layer(
            [TarItem.File("usr/bin/su", "#!/bin/sh\n", (UnixFileMode)0b100_111_101_101)], LayerCompression.Gzip));
        await LayerFlattener.ApplyAsync(new LayerBlob("sha256:" + new string('5', 64), OciLayoutBuilder.LayerMediaType(LayerCompression.Gzip),
            new FileInfo(layer).Length, layer), root, CancellationToken.None);

        var su = Path.Combine(root, "usr/bin/su");
        Assert.True(File.GetUnixFileMode(su).HasFlag(UnixFileMode.SetUser)); // the hazard is really there
        Assert.Equal(Private, File.GetUnixFileMode(work));
        Assert.Equal(Private, File.GetUnixFileMode(builder.StagingRoot));
        Assert.Equal(Files.Exec755, File.GetUnixFileMode(root)); // the image's own "/" keeps the mode it will have in the guest

        if (Bough.Images.Oci.PosixFs.IsRoot)
        {
            var asNobody = await CommandRunner.RunAsync("setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/test", "-e", su], null, CancellationToken.None);
            Assert.NotEqual(0, asNobody.ExitCode); // nobody cannot even see it exists
            var asRoot = await CommandRunner.RunAsync("/usr/bin/test", ["-e", su], null, CancellationToken.None);
            Assert.Equal(0, asRoot.ExitCode); // ...which is the staging's doing, not a wrong path
        }
    }

    [Fact]
    public void Base_and_kernel_staging_directories_are_private_too()
    {
        var parent = Path.Combine(_tmp.Path, "images", ".staging");
        var work = Files.NewStagingDir(parent);
        Assert.Equal(Private, File.GetUnixFileMode(work));
        Assert.Equal(Private, File.GetUnixFileMode(parent));
    }
}
