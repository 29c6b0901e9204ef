namespace Bough.Engine.Tests.Lifecycle;

/// <summary>Defect 8: updates of a runtime's record are atomic, in memory and in the catalog.</summary>
public sealed class SandboxRuntimeTests : IAsyncLifetime
{
    private EngineHarness _h = null!;

    public async Task InitializeAsync() => _h = await EngineHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    // Defect 8. The old SandboxRuntime (c519707^:src/Bough.Engine/Sandboxes/SandboxRuntime.cs) had a
    // Record property whose getter and setter each took the lock, and every writer did
    // `rt.Record = rt.Record with {...}` (SandboxManager.cs:597 in the exit watcher,
    // SandboxManager.Snapshots.cs:410-412 in the capture, on a copy read at :373 before the capture)
    // and then wrote its own copy to the catalog: the read-modify-write was outside the lock, so
    // concurrent writers dropped each other's keys here, and the last catalog write could be a stale copy.
    [Fact]
    public async Task Concurrent_updates_lose_nothing_in_memory_or_in_the_catalog()
    {
        var sb = await _h.CreateAsync(metadata: new() { ["original"] = "yes" });
        var rt = _h.Runtime(sb.Id);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            await go.Task;
            await rt.UpdateAsync(_h.SandboxRows, r => r with
            {
                Metadata = new Dictionary<string, string>(r.Metadata) { [$"k{i:D3}"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            });
        })).ToArray();

        go.SetResult();
        await Task.WhenAll(writers).Within();

        var expected = Enumerable.Range(0, 200).Select(i => $"k{i:D3}").Append("original").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, rt.Record.Metadata.Keys.Order(StringComparer.Ordinal).ToList());
        var row = await _h.RowAsync(sb.Id);
        Assert.Equal(expected, row!.Metadata.Keys.Order(StringComparer.Ordinal).ToList());
        Assert.Equal("137", row.Metadata["k137"]);
    }
}
