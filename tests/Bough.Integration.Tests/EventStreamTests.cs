using System.Net;
using System.Threading.Channels;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// <c>GET /v1/events</c> against a real daemon: a create, a branch ×2 and the deletes arrive through the C# client in
/// the order they happened; a pull from a real local registry publishes its progress and outcome; the raw stream is
/// server-sent events with keepalives; it is behind the token.
/// </summary>
[Collection("daemon")]
public sealed class EventStreamTests(DaemonFixture f, RegistryFixture reg) : IClassFixture<RegistryFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    private BoughClient Client => f.Daemon.Client;

    [Fact]
    public async Task Create_branch_and_delete_arrive_in_order()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var events = Channel.CreateUnbounded<BoughEvent>();
        await using var stream = Client.EventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await stream.MoveNextAsync());
        Assert.Equal(EventTypes.Ready, stream.Current.Type);
        var pump = PumpAsync(stream, events.Writer);
        var seen = new List<BoughEvent>();

        var sb = await Client.CreateSandboxAsync(new CreateSandboxRequest());
        var branch = await Client.BranchAsync(sb.Id, new BranchRequest { Count = 2 });
        var kids = branch.Children.Select(c => c.Id).ToList();
        foreach (var id in kids.Append(sb.Id)) await Client.DeleteSandboxAsync(id);

        await UntilAsync(events.Reader, seen, e => e.Type == EventTypes.SandboxDeleted && e.Id == sb.Id);
        // The untagged branch snapshot goes once nothing needs it any more.
        await UntilAsync(events.Reader, seen, e => e.Type == EventTypes.SnapshotDeleted && e.Id == branch.Snapshot.Id);
        await cts.CancelAsync();
        await pump;

        int At(string type, string id, string? state = null) =>
            seen.FindIndex(e => e.Type == type && e.Id == id && (state is null || e.Sandbox?.State == state)) is var i and >= 0
                ? i : throw new Xunit.Sdk.XunitException($"no {type} {state} for {id} in: {Describe(seen)}");
        var order = new[]
        {
            At(EventTypes.SandboxCreated, sb.Id), At(EventTypes.SandboxState, sb.Id, SandboxStates.Running),
            At(EventTypes.SnapshotCreated, branch.Snapshot.Id),
            Math.Max(At(EventTypes.SandboxState, kids[0], SandboxStates.Running), At(EventTypes.SandboxState, kids[1], SandboxStates.Running)),
            At(EventTypes.SandboxDeleted, kids[0]), At(EventTypes.SandboxDeleted, kids[1]),
            At(EventTypes.SandboxState, sb.Id, SandboxStates.Stopping), At(EventTypes.SandboxDeleted, sb.Id),
            At(EventTypes.SnapshotDeleted, branch.Snapshot.Id),
        };
        Assert.True(order.SequenceEqual(order.Order()), $"out of order: {Describe(seen)}");
        foreach (var kid in kids)
            Assert.True(At(EventTypes.SandboxCreated, kid) > order[2], "a child's row before its snapshot's");
        var captured = seen[order[2]].Snapshot!;
        Assert.Equal((sb.Id, "branch"), (captured.SourceSandboxId, captured.Kind));
        Assert.Equal(branch.Snapshot.PauseMs, captured.PauseMs);
        Assert.Equal(branch.Snapshot.MemoryBytes, captured.MemoryBytes);
        Assert.Null(seen[order[2]].Sandbox);
        var seqs = seen.Select(e => e.Sequence).ToList();
        Assert.True(seqs.Zip(seqs.Skip(1)).All(p => p.Second > p.First), $"sequence numbers not increasing: {string.Join(",", seqs)}");
        Assert.DoesNotContain(seen, e => e.Type == EventTypes.Resync);
    }

    [Fact]
    public async Task A_pull_publishes_image_progress_then_created_and_a_delete_image_deleted()
    {
        var (reference, built) = await reg.PushImageAsync($"ev/pull-{Guid.NewGuid().ToString("N")[..8]}:1", Bough.TestSupport.Registry.TestImages.Busybox());
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var events = Channel.CreateUnbounded<BoughEvent>();
        await using var stream = Client.EventsAsync(["image"], cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await stream.MoveNextAsync());
        Assert.Equal(EventTypes.Ready, stream.Current.Type);
        var pump = PumpAsync(stream, events.Writer);
        var seen = new List<BoughEvent>();

        var (_, image) = await ImageApi.PullAsync(f.Daemon.Http, reference);
        await UntilAsync(events.Reader, seen, e => e.Type == EventTypes.ImageCreated && e.Id == reference);
        await Client.DeleteImageAsync(reference);
        await UntilAsync(events.Reader, seen, e => e.Type == EventTypes.ImageDeleted && e.Id == reference);
        await cts.CancelAsync();
        await pump;

        Assert.All(seen, e => Assert.Equal("image", EventTypes.Category(e.Type))); // the filter: nothing else
        var mine = seen.Where(e => e.Id == reference).ToList();
        Assert.Equal(new[] { EventTypes.ImageCreated, EventTypes.ImageDeleted }, mine.Select(e => e.Type).SkipWhile(t => t == EventTypes.ImageProgress));
        var progress = mine.TakeWhile(e => e.Type == EventTypes.ImageProgress).ToList();
        Assert.NotEmpty(progress);
        Assert.All(progress, e => Assert.Equal((ImageStates.Pulling, "registry"), (e.Image!.State, e.Image.Source)));
        var layers = progress.Select(e => e.Image!.Layers).LastOrDefault(l => l is { Count: > 0 });
        Assert.NotNull(layers);
        Assert.Equal(built.Layers.Select(l => l.Digest), layers.Select(l => l.Digest));
        Assert.All(progress.Zip(progress.Skip(1)), p => Assert.True(p.Second.Timestamp - p.First.Timestamp >= TimeSpan.FromMilliseconds(230),
            $"progress not throttled: {p.First.Timestamp:ss.fff} then {p.Second.Timestamp:ss.fff}"));
        var created = mine[progress.Count];
        Assert.Equal((ImageStates.Ready, image.Digest), (created.Image!.State, created.Image.Digest));
        Assert.Equal("deleted", mine[^1].Reason);
    }

    [Fact]
    public async Task The_raw_stream_is_server_sent_events_with_keepalives_and_a_type_filter()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/events?types=snapshot");
        using var response = await f.Daemon.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));

        Assert.Matches(@"^id: \d+$", await reader.ReadLineAsync(cts.Token));
        Assert.Equal("event: ready", await reader.ReadLineAsync(cts.Token));
        Assert.StartsWith("data: {", await reader.ReadLineAsync(cts.Token), StringComparison.Ordinal);
        Assert.Equal("", await reader.ReadLineAsync(cts.Token));
        // A sandbox change is filtered out; nothing else happens, so the next thing is a keepalive (15 s).
        var sb = await f.Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest(), cts.Token);
        try
        {
            Assert.Equal(": keepalive", await reader.ReadLineAsync(cts.Token));
        }
        finally
        {
            await f.Daemon.Client.DeleteSandboxAsync(sb.Id, CancellationToken.None);
        }
    }

    [Fact]
    public async Task An_unknown_type_is_400_no_token_is_401_and_openapi_documents_it()
    {
        var openApi = await f.Daemon.Http.GetStringAsync("/openapi/v1.json");
        Assert.Contains("\"/v1/events\"", openApi, StringComparison.Ordinal);
        Assert.Contains("text/event-stream", openApi, StringComparison.Ordinal);

        using var bad = await f.Daemon.Http.GetAsync("/v1/events?types=sandbox,bogus");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(ErrorCodes.InvalidRequest, (await Problems.ReadAsync(bad)).Code);

        using var anonymous = new HttpClient { BaseAddress = f.Daemon.Url, Timeout = TimeSpan.FromSeconds(30) };
        using var refused = await anonymous.GetAsync("/v1/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("unauthorized", (await Problems.ReadAsync(refused)).Code);
    }

    [Fact]
    public async Task Bough_events_prints_a_line_per_event()
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bough.dll"));
        psi.ArgumentList.Add("events");
        psi.ArgumentList.Add("--types");
        psi.ArgumentList.Add("sandbox");
        f.Daemon.ConfigureCli(psi);
        using var cli = System.Diagnostics.Process.Start(psi)!;
        var lines = Channel.CreateUnbounded<string>();
        cli.OutputDataReceived += (_, e) => { if (e.Data is not null) lines.Writer.TryWrite(e.Data); };
        cli.BeginOutputReadLine();
        try
        {
            using var timeout = new CancellationTokenSource(Patience);
            var line = await lines.Reader.ReadAsync(timeout.Token);
            Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} +\d+ ready +- following changes", line);
            var sb = await Client.CreateSandboxAsync(new CreateSandboxRequest(), timeout.Token);
            while (!line.Contains(sb.Id, StringComparison.Ordinal) || !line.Contains(EventTypes.SandboxState, StringComparison.Ordinal))
                line = await lines.Reader.ReadAsync(timeout.Token);
            Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} +\d+ sandbox\.state +sb-\S+ running", line);
            await Client.DeleteSandboxAsync(sb.Id, CancellationToken.None);
            while (!line.Contains(EventTypes.SandboxDeleted, StringComparison.Ordinal))
                line = await lines.Reader.ReadAsync(timeout.Token);
            Assert.Contains(sb.Id, line, StringComparison.Ordinal);
        }
        finally
        {
            cli.Kill();
            await cli.WaitForExitAsync();
        }
    }

    private static async Task PumpAsync(IAsyncEnumerator<BoughEvent> stream, ChannelWriter<BoughEvent> into)
    {
        try
        {
            while (await stream.MoveNextAsync()) into.TryWrite(stream.Current);
        }
        catch (OperationCanceledException) { /* the test is done */ }
        finally
        {
            into.TryComplete();
        }
    }

    private static async Task UntilAsync(ChannelReader<BoughEvent> events, List<BoughEvent> seen, Func<BoughEvent, bool> what)
    {
        using var timeout = new CancellationTokenSource(Patience);
        try
        {
            while (true)
            {
                var e = await events.ReadAsync(timeout.Token);
                seen.Add(e);
                if (what(e)) return;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            throw new Xunit.Sdk.XunitException($"the awaited event did not come; saw: {Describe(seen)}");
        }
    }

    private static string Describe(IEnumerable<BoughEvent> events) =>
        string.Join("; ", events.Select(e => $"{e.Sequence} {e.Type} {e.Id} {e.Sandbox?.State}"));
}
