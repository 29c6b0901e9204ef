using Bough.Contracts;
using Bough.Engine.Sandboxes;

namespace Bough.Engine.Tests.Guest;

/// <summary>Guest paths are normalised before any check: the root cannot be deleted through /., //, /a/.. and the like.</summary>
public sealed class GuestPathTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Theory]
    [InlineData("/", "/")]
    [InlineData("/.", "/")]
    [InlineData("/./", "/")]
    [InlineData("//", "/")]
    [InlineData("///.//", "/")]
    [InlineData("/a/..", "/")]
    [InlineData("/a/../", "/")]
    [InlineData("/../..", "/")]
    [InlineData("/a/b/../../..", "/")]
    [InlineData("/tmp//x/./y/../z", "/tmp/x/z")]
    [InlineData("/tmp/x/", "/tmp/x/")]
    [InlineData("/tmp/x/.", "/tmp/x/")]
    [InlineData("/tmp/x/y/..", "/tmp/x/")]
    [InlineData("/..a/.b./...", "/..a/.b./...")]
    public void Normalize_resolves_dots_and_repeated_slashes_in_the_text(string path, string expected) =>
        Assert.Equal(expected, GuestPaths.Normalize(path));

    [Theory]
    [InlineData("/.")]
    [InlineData("/./")]
    [InlineData("//")]
    [InlineData("/a/..")]
    [InlineData("/a/b/../..//.")]
    [InlineData("/..")]
    public async Task Deleting_anything_that_names_the_root_is_refused_before_the_agent_sees_it(string path)
    {
        var sb = await _h.CreateAsync();

        var ex = await Assert.ThrowsAsync<BoughException>(() => _h.Sandboxes.DeleteFileAsync(sb.Id, path, CancellationToken.None));

        Assert.Equal(ErrorCodes.InvalidPath, ex.Code);
        Assert.Contains("root", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_h.Agents.LatestFor(sb.Id)!.Removes);
    }

    [Fact]
    public async Task The_agent_receives_normalised_paths_for_every_file_operation_and_exec_cwd()
    {
        var sb = await _h.CreateAsync();
        var agent = _h.Agents.LatestFor(sb.Id)!;

        await _h.Sandboxes.WriteFileAsync(sb.Id, "/srv//app/./x/../f.txt", new MemoryStream([7]), CancellationToken.None);
        await using (var file = await _h.Sandboxes.OpenFileAsync(sb.Id, "/srv/./app//f.txt", CancellationToken.None))
            Assert.Equal(1, file.Length); // found under its normal name
        await _h.Sandboxes.ListFilesAsync(sb.Id, "/srv//app/", CancellationToken.None);
        await _h.Sandboxes.DeleteFileAsync(sb.Id, "/srv/app/y/../f.txt", CancellationToken.None);
        await _h.Sandboxes.ExecAsync(sb.Id, new ExecCommand(["pwd"], Cwd: "/srv//app/."), CancellationToken.None);

        Assert.Equal(["/srv/app/f.txt"], agent.Removes);
        Assert.Equal("/srv/app/", Assert.Single(agent.Lists).Path);
        Assert.Equal("/srv/app/", agent.Execs.Last().Cwd);
    }
}
