using Bough.Images.Oci;

namespace Bough.Images.Tests.Oci;

/// <summary>Which host paths an import may read: only what really lies inside the import directory.</summary>
public sealed class ImportDirectoryTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly ImportDirectory _import;

    public ImportDirectoryTests()
    {
        Directory.CreateDirectory(Path.Combine(_tmp.Path, "import", "layout"));
        File.WriteAllText(Path.Combine(_tmp.Path, "import", "image.tar"), "tar");
        File.WriteAllText(Path.Combine(_tmp.Path, "secret"), "host file");
        _import = new ImportDirectory(Path.Combine(_tmp.Path, "import"));
    }

    public void Dispose() => _tmp.Dispose();

    private string P(string rel) => Path.Combine(_tmp.Path, rel);

    private ImageException Refused(string path, string code = "permission_denied")
    {
        var e = Assert.Throws<ImageException>(() => _import.Resolve(path));
        Assert.Equal(code, e.Code);
        return e;
    }

    [Fact]
    public void Files_and_layouts_inside_resolve_to_their_real_paths()
    {
        Assert.Equal(P("import/image.tar"), _import.Resolve(P("import/image.tar")));
        Assert.Equal(P("import/layout"), _import.Resolve(P("import/./layout/")));
    }

    [Fact]
    public void A_path_outside_is_permission_denied_and_says_where_imports_come_from()
    {
        var e = Refused(P("secret"));
        Assert.Contains($"outside the import directory {P("import")}", e.Message);
        Refused("/etc/shadow");
        Refused(P("import"));  // the directory itself is not an archive in it
    }

    [Fact]
    public void Dot_dot_is_resolved_before_the_check()
    {
        Refused(P("import/../secret"));
        Refused(P("import/layout/../../secret"));
    }

    [Fact]
    public void A_link_inside_that_leads_out_is_permission_denied()
    {
        File.CreateSymbolicLink(P("import/escape"), P("secret"));
        Directory.CreateSymbolicLink(P("import/etc"), "/etc");
        Refused(P("import/escape"));
        Refused(P("import/etc/passwd"));
    }

    [Fact]
    public void A_link_outside_that_leads_in_is_allowed_and_the_real_path_is_what_gets_opened()
    {
        File.CreateSymbolicLink(P("shortcut.tar"), P("import/image.tar"));
        Assert.Equal(P("import/image.tar"), _import.Resolve(P("shortcut.tar")));
    }

    [Fact]
    public void Whether_a_host_path_exists_is_not_told_outside_but_is_inside()
    {
        var missingOutside = Refused(P("no-such-file"));
        var existingOutside = Refused(P("secret"));
        Assert.Equal(existingOutside.Message.Replace("secret", "X"), missingOutside.Message.Replace("no-such-file", "X"));
        var e = Refused(P("import/no-such.tar"), "invalid_request");
        Assert.Contains("nothing at", e.Message);
    }

    [Fact]
    public void A_missing_import_directory_says_to_create_it()
    {
        var e = Assert.Throws<ImageException>(() => new ImportDirectory(P("nowhere")).Resolve(P("nowhere/x.tar")));
        Assert.Equal("permission_denied", e.Code);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void An_import_directory_that_is_itself_a_link_works_through_its_target()
    {
        Directory.CreateSymbolicLink(P("import-link"), P("import"));
        var viaLink = new ImportDirectory(P("import-link"));
        Assert.Equal(P("import/image.tar"), viaLink.Resolve(P("import-link/image.tar")));
        Assert.Throws<ImageException>(() => viaLink.Resolve(P("secret")));
    }

    [Fact]
    public void The_default_is_import_under_the_data_dir() =>
        Assert.Equal("/var/lib/bough/import", ImportDirectory.ForDataDir("/var/lib/bough").Path);
}
