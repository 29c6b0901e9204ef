using System.CommandLine;
using Bough.Contracts;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough pull REF</c>: starts the pull in the background on the daemon, then follows it with
/// progress, so a long download neither holds one HTTP request open for minutes nor stays silent.
/// </summary>
internal static class PullVerb
{
    public static Command Build(CliContext context)
    {
        var reference = new Argument<string>("ref")
        {
            Description = "Image reference: python:3.12-slim, ghcr.io/org/app:1.0, localhost:5000/app@sha256:...",
        };
        var insecure = new Option<bool>("--insecure") { Description = "Allow plain HTTP (and unverified TLS) to the registry" };
        var diskSize = DiskSizeOption();
        var quiet = QuietOption();
        var json = JsonOption();
        var command = new Command("pull", "Pull an OCI image from a registry; prints its name, digest and size")
        {
            reference, insecure, diskSize, quiet, json,
        };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var request = new PullImageRequest
            {
                Ref = parse.GetValue(reference),
                Insecure = parse.GetValue(insecure) ? true : null,
                DiskSizeMiB = parse.GetOptional(diskSize),
            };
            var started = await client.PullImageAsync(request, async: true, ct);
            return await FinishAsync(context, client, started, parse.GetValue(quiet), parse.GetValue(json), ct);
        });
        return command;
    }

    internal static Option<int> DiskSizeOption() =>
        NumericOptions.Integer("--disk-size", "Root filesystem size in MiB (default: the content plus headroom)", "MiB");

    internal static Option<bool> QuietOption() =>
        new("--quiet", "-q") { Description = "No progress; print only the image name" };

    internal static Option<bool> JsonOption() =>
        new("--json") { Description = "No progress; print the ready image as JSON" };

    /// <summary>Shared by pull, import and build: follow to the end, then print the result.</summary>
    internal static async Task<int> FinishAsync(
        CliContext context, Client.BoughClient client, Image started, bool quiet, bool json, CancellationToken ct)
    {
        var image = await new ImageProgress(context, client).FollowAsync(started, quiet || json, ct);
        if (json)
            context.WriteJson(image);
        else if (quiet)
            context.Terminal.Out.WriteLine(image.Name);
        else
            ImageFormat.WriteSummary(context.Terminal.Out, image);
        return ExitCodes.Ok;
    }
}
