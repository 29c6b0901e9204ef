using Bough.Contracts;
using Bough.Images;

namespace Bough.Engine.Tests.Images;

/// <summary>
/// The image service's part of containment: imports read only from the import directory (403 otherwise,
/// links and <c>..</c> resolved), and a publish flattens every layer of an image against one budget.
/// Real catalog, importer and builder; no VMs.
/// </summary>
public sealed class ImageContainmentTests
{
    private static Task<ImageAnswer> Import(ImageServiceHarness h, string path) =>
        h.Images.ImportAsync(new ImportImageRequest { Path = path, Name = "app" }, wait: true, CancellationToken.None);

    [Fact]
    public async Task An_import_from_outside_the_import_directory_is_403_and_names_the_directory()
    {
        using var h = await ImageServiceHarness.StartAsync();
        var outside = h.Layout("v1", parent: h.Dir);

        var e = await Assert.ThrowsAsync<BoughException>(() => Import(h, outside));

        Assert.Equal(ErrorCodes.PermissionDenied, e.Code);
        Assert.Equal(403, e.Status);
        Assert.Contains(h.ImportDir, e.Message);
        Assert.Single(await h.Images.ListAsync(CancellationToken.None)); // only the built-in image
    }

    [Fact]
    public async Task Links_and_dot_dot_that_lead_out_are_403_too()
    {
        using var h = await ImageServiceHarness.StartAsync();
        var outside = h.Layout("v1", parent: h.Dir);
        Directory.CreateDirectory(h.ImportDir);
        Directory.CreateSymbolicLink(Path.Combine(h.ImportDir, "escape"), outside);

        Assert.Equal(403, (await Assert.ThrowsAsync<BoughException>(() => Import(h, Path.Combine(h.ImportDir, "escape")))).Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<BoughException>(() =>
            Import(h, Path.Combine(h.ImportDir, "..", "..", Path.GetFileName(outside))))).Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<BoughException>(() => Import(h, "/etc/passwd"))).Status);
    }

    [Fact]
    public async Task An_import_from_inside_is_published()
    {
        using var h = await ImageServiceHarness.StartAsync();
        var answer = await Import(h, h.Layout("v1"));
        Assert.Equal(ImageOutcome.Created, answer.Outcome);
    }

    [Fact]
    public async Task Layers_are_flattened_under_the_service_limits_and_a_flood_leaves_no_staging()
    {
        using var h = await ImageServiceHarness.StartAsync(new ImageLimits { MaxImageEntries = 5 });

        var e = await Assert.ThrowsAsync<BoughException>(() => Import(h, h.Layout("v1")));

        Assert.Equal(ErrorCodes.LayerRejected, e.Code);
        Assert.Equal(422, e.Status);
        Assert.Contains("MaxImageEntries", e.Message);
        Assert.Empty(Directory.Exists(h.Builder.StagingRoot) ? Directory.GetFileSystemEntries(h.Builder.StagingRoot) : []);
    }
}
