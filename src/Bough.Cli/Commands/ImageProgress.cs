using Bough.Client;
using Bough.Contracts;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Bough.Cli.Commands;

/// <summary>
/// Follows an image the daemon is pulling, importing or building until it is ready, showing
/// progress on stderr: live bars (one per layer plus an overall phase line) at a terminal, plain
/// lines when stderr is a pipe or file, nothing when quiet. Stdout is left for the result.
/// </summary>
internal sealed class ImageProgress(CliContext context, BoughClient client)
{
    /// <summary>Returns the ready image, or throws the failure as <see cref="BoughApiException"/> (code + detail).</summary>
    public async Task<Image> FollowAsync(Image started, bool quiet, CancellationToken ct)
    {
        switch (started.State)
        {
            case ImageStates.Ready:
                return started;
            case ImageStates.Failed:
                throw BoughClient.FailedImage(started);
        }

        try
        {
            if (quiet)
                return await client.WaitForImageAsync(started.Name, null, ct: ct);
            if (context.Terminal.StderrIsTerminal)
                return await LiveAsync(started, ct);
            return await client.WaitForImageAsync(started.Name, new PlainLines(context.Terminal.Err), ct: ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Only our polling stops; say so, or the user would think the pull was cancelled.
            context.Terminal.Err.WriteLine($"stopped following {started.Name}; the daemon carries on (see `bough images`)");
            throw;
        }
    }

    private async Task<Image> LiveAsync(Image started, CancellationToken ct) =>
        await context.Terminal.AnsiErr.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new UnlessIndeterminate(new PercentageColumn()),
                new UnlessIndeterminate(new DownloadedColumn()),
                new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var bars = new LiveBars(ctx, started.Name);
                bars.Update(started);
                var ready = await client.WaitForImageAsync(started.Name, new SyncProgress(bars.Update), ct: ct);
                bars.Finish();
                return ready;
            });

    /// <summary>The Spectre tasks: the first is the overall line (phase, total bytes), then one per layer.</summary>
    private sealed class LiveBars(ProgressContext ctx, string name)
    {
        private readonly ProgressTask _overall = ctx.AddTask(Markup.Escape(name), maxValue: 1);
        private readonly Dictionary<string, ProgressTask> _layers = new(StringComparer.Ordinal);

        public void Update(Image image)
        {
            var layers = image.Layers ?? [];
            foreach (var layer in layers)
            {
                // Spectre refuses a task without a description, so it is made with its first one.
                var description = Markup.Escape($"  {ImageFormat.Layer(layer)} {layer.State}");
                if (!_layers.TryGetValue(layer.Digest, out var bar))
                    bar = _layers[layer.Digest] = ctx.AddTask(description, maxValue: 1);
                bar.Description = description;
                bar.MaxValue = Math.Max(1, layer.Size);
                // A cached layer was never downloaded; showing it full says "nothing left to do".
                bar.Value = layer.State is "cached" or "done" ? bar.MaxValue : Math.Min(layer.Done, bar.MaxValue);
            }

            var total = layers.Sum(l => l.Size);
            _overall.Description = Markup.Escape($"{name}: {image.Phase ?? image.State}");
            // Without layers (a recipe build, the resolve step) there is nothing to measure yet.
            _overall.IsIndeterminate = total <= 0;
            if (total > 0)
            {
                _overall.MaxValue = total;
                _overall.Value = _layers.Values.Sum(b => b.Value);
            }
        }

        public void Finish()
        {
            _overall.Description = Markup.Escape($"{name}: ready");
            foreach (var bar in _layers.Values.Append(_overall))
            {
                bar.IsIndeterminate = false;
                bar.Value = bar.MaxValue;
                bar.StopTask();
            }
        }
    }

    /// <summary>One line per change of phase or layer state: readable in a CI log, not a flood of percentages.</summary>
    private sealed class PlainLines(TextWriter output) : IProgress<Image>
    {
        private readonly Dictionary<string, string> _layerStates = new(StringComparer.Ordinal);
        private string? _phase;

        public void Report(Image image)
        {
            var phase = image.Phase ?? image.State;
            if (phase != _phase && image.State != ImageStates.Ready)
            {
                _phase = phase;
                output.WriteLine($"{image.Name}: {phase}");
            }
            foreach (var layer in image.Layers ?? [])
            {
                if (_layerStates.TryGetValue(layer.Digest, out var seen) && seen == layer.State)
                    continue;
                _layerStates[layer.Digest] = layer.State;
                output.WriteLine($"  layer {ImageFormat.Layer(layer)} {SnapshotFormat.Bytes(layer.Size)} {layer.State}");
            }
        }
    }

    /// <summary>
    /// Hides a column while its task has nothing to measure (resolving, a recipe build), where
    /// "0% 0/1 byte" would be a made-up figure.
    /// </summary>
    private sealed class UnlessIndeterminate(ProgressColumn inner) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            task.IsIndeterminate ? Text.Empty : inner.Render(options, task, deltaTime);

        public override int? GetColumnWidth(RenderOptions options) => inner.GetColumnWidth(options);
    }

    /// <summary>Reports on the polling thread; Spectre's progress context is not thread-safe, and Progress&lt;T&gt; would post elsewhere.</summary>
    private sealed class SyncProgress(Action<Image> report) : IProgress<Image>
    {
        public void Report(Image value) => report(value);
    }
}
