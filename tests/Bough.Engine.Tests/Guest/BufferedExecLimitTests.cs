using System.Runtime.CompilerServices;
using System.Text;
using Bough.AgentClient;
using Bough.Contracts;
using Bough.Engine.Tests.Fakes;
using ExecEvent = Bough.AgentClient.ExecEvent;

namespace Bough.Engine.Tests.Guest;

/// <summary>What a hostile guest can make a buffered exec cost the daemon: slots, a default timeout, output and JSON caps.</summary>
public sealed class BufferedExecLimitTests
{
    private static readonly ExecCommand Command = new(["run"]);

    [Fact]
    public async Task A_sandbox_past_its_buffered_exec_limit_gets_429_with_retry_after_while_streams_still_run()
    {
        await using var h = await EngineHarness.StartAsync(o =>
        {
            o.MaxBufferedExecsPerSandbox = 2;
            o.ExecSlotWait = TimeSpan.FromMilliseconds(100);
        });
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new CountSignal();
        var sb = await h.CreateAsync();
        h.Agents.ExecOverride = (spec, ct) => Parked(spec, started, release.Task, ct);

        var running = new[] { h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None), h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None) };
        await started.WhenAtLeast(2).Within();

        var ex = await Assert.ThrowsAsync<BoughException>(() => h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None));
        Assert.Equal(ErrorCodes.TooManyExecs, ex.Code);
        Assert.Equal(429, ex.Status);
        Assert.NotNull(ex.RetryAfter);
        Assert.Contains($"sandbox {sb.Id} already runs 2 buffered execs", ex.Message, StringComparison.Ordinal);

        var other = await h.CreateAsync(); // another sandbox has its own slots
        var streamed = h.Sandboxes.ExecStreamAsync(sb.Id, Command, CancellationToken.None).GetAsyncEnumerator();
        var streamedFirst = streamed.MoveNextAsync().AsTask();
        var otherExec = h.Sandboxes.ExecAsync(other.Id, Command, CancellationToken.None);
        await started.WhenAtLeast(4).Within(); // neither was limited
        release.SetResult();
        await Task.WhenAll(running).Within();
        await otherExec.Within();
        Assert.True(await streamedFirst.Within());
        await streamed.DisposeAsync();
        Assert.Equal("done", (await h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None)).Stdout); // slots came back
    }

    [Fact]
    public async Task The_daemon_wide_limit_spans_sandboxes()
    {
        await using var h = await EngineHarness.StartAsync(o =>
        {
            o.MaxBufferedExecs = 2;
            o.ExecSlotWait = TimeSpan.FromMilliseconds(100);
        });
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new CountSignal();
        var a = await h.CreateAsync();
        var b = await h.CreateAsync();
        h.Agents.ExecOverride = (spec, ct) => Parked(spec, started, release.Task, ct);
        var running = new[] { h.Sandboxes.ExecAsync(a.Id, Command, CancellationToken.None), h.Sandboxes.ExecAsync(b.Id, Command, CancellationToken.None) };
        await started.WhenAtLeast(2).Within();

        var ex = await Assert.ThrowsAsync<BoughException>(() => h.Sandboxes.ExecAsync(b.Id, Command, CancellationToken.None));

        Assert.Equal(ErrorCodes.TooManyExecs, ex.Code);
        Assert.Contains("the daemon already runs 2 buffered execs", ex.Message, StringComparison.Ordinal);
        release.SetResult();
        await Task.WhenAll(running).Within();
        await h.Sandboxes.ExecAsync(b.Id, Command, CancellationToken.None);
    }

    [Fact]
    public async Task Buffered_execs_get_the_default_timeout_unless_they_name_one_and_streamed_ones_do_not()
    {
        await using var h = await EngineHarness.StartAsync(o => o.DefaultExecTimeout = TimeSpan.FromSeconds(42));
        var sb = await h.CreateAsync();

        await h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None);
        await h.Sandboxes.ExecAsync(sb.Id, Command with { Timeout = TimeSpan.FromSeconds(3) }, CancellationToken.None);
        await foreach (var _ in h.Sandboxes.ExecStreamAsync(sb.Id, Command, CancellationToken.None)) { }

        var timeouts = h.Agents.LatestFor(sb.Id)!.Execs.Select(e => e.Timeout).ToList();
        Assert.Equal([TimeSpan.FromSeconds(42), TimeSpan.FromSeconds(3), null], timeouts);
    }

    [Fact]
    public async Task Output_past_the_byte_cap_is_413_and_the_command_is_ended()
    {
        await using var h = await EngineHarness.StartAsync(o => o.MaxBufferedOutputBytes = 4096);
        var sb = await h.CreateAsync();
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Agents.ExecOverride = (_, ct) => Endless(Encoding.ASCII.GetBytes(new string('a', 1000)), ended, ct);

        var ex = await Assert.ThrowsAsync<BoughException>(() => h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None));

        Assert.Equal(ErrorCodes.PayloadTooLarge, ex.Code);
        Assert.Contains("stdout exceeded 4 KiB", ex.Message, StringComparison.Ordinal);
        await ended.Task.Within(); // the exec's enumeration was ended (the real agent kills the process group)
    }

    [Fact]
    public async Task Output_that_would_escape_into_a_huge_json_answer_is_413_before_the_byte_cap()
    {
        await using var h = await EngineHarness.StartAsync(o =>
        {
            o.MaxBufferedOutputBytes = 64 * 1024;
            o.MaxBufferedJsonBytes = 24 * 1024;
        });
        var sb = await h.CreateAsync();
        h.Agents.ExecOverride = (_, ct) => Once(new byte[8 * 1024], ct); // 8 KiB of NUL: 48 KiB of \u0000 in JSON

        var ex = await Assert.ThrowsAsync<BoughException>(() => h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None));
        Assert.Equal(ErrorCodes.PayloadTooLarge, ex.Code);
        Assert.Contains("JSON answer of more than 24 KiB", ex.Message, StringComparison.Ordinal);

        var text = Encoding.UTF8.GetBytes(new string('a', 16 * 1024) + "é\n");
        h.Agents.ExecOverride = (_, ct) => Once(text, ct); // plain text of the same order passes
        Assert.Equal(16 * 1024 + 2, (await h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None)).Stdout.Length);
    }

    [Fact]
    public async Task Output_split_inside_a_utf8_sequence_decodes_whole()
    {
        await using var h = await EngineHarness.StartAsync();
        var sb = await h.CreateAsync();
        var bytes = Encoding.UTF8.GetBytes("añb€");
        h.Agents.ExecOverride = (_, ct) => Chunks([bytes[..2], bytes[2..5], bytes[5..]], ct);

        Assert.Equal("añb€", (await h.Sandboxes.ExecAsync(sb.Id, Command, CancellationToken.None)).Stdout);
    }

    [Fact]
    public async Task A_listing_past_the_entry_cap_is_413_and_the_cap_reaches_the_agent()
    {
        await using var h = await EngineHarness.StartAsync(o => o.MaxListEntries = 3);
        var sb = await h.CreateAsync();
        for (var i = 0; i < 4; i++)
            await h.Sandboxes.WriteFileAsync(sb.Id, $"/d/f{i}", new MemoryStream([1]), CancellationToken.None);

        var ex = await Assert.ThrowsAsync<BoughException>(() => h.Sandboxes.ListFilesAsync(sb.Id, "/d", CancellationToken.None));

        Assert.Equal(ErrorCodes.PayloadTooLarge, ex.Code);
        var (_, limits) = Assert.Single(h.Agents.LatestFor(sb.Id)!.Lists);
        Assert.Equal(new ListLimits(3, h.Options.MaxListBytes), limits);
    }

    private static async IAsyncEnumerable<ExecEvent> Parked(ExecSpec spec, CountSignal started, Task release, [EnumeratorCancellation] CancellationToken ct)
    {
        started.Increment();
        await release.WaitAsync(ct);
        yield return new ExecEvent.Stdout("done"u8.ToArray());
        yield return new ExecEvent.Exit(0, null, false, 1);
    }

    private static async IAsyncEnumerable<ExecEvent> Endless(byte[] chunk, TaskCompletionSource ended, [EnumeratorCancellation] CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Yield();
                yield return new ExecEvent.Stdout(chunk);
            }
        }
        finally
        {
            ended.TrySetResult();
        }
    }

    private static IAsyncEnumerable<ExecEvent> Once(byte[] data, CancellationToken ct) => Chunks([data], ct);

    private static async IAsyncEnumerable<ExecEvent> Chunks(byte[][] chunks, [EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var c in chunks)
        {
            await Task.Yield();
            yield return new ExecEvent.Stdout(c);
        }
        yield return new ExecEvent.Exit(0, null, false, 1);
    }
}
