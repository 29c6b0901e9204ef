using System.CommandLine;
using System.Text.RegularExpressions;
using Bough.Client;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough cp SRC DST</c>: copies one file between the host and a sandbox. Exactly one side is
/// <c>ID:/guest/path</c>; the other is a host path, or <c>-</c> for stdin/stdout.
/// </summary>
internal static partial class CopyVerb
{
    private const int BufferSize = 128 * 1024;

    public static Command Build(CliContext context)
    {
        var source = new Argument<string>("source") { Description = "ID:/guest/path, host path, or - (stdin)" };
        var destination = new Argument<string>("destination") { Description = "ID:/guest/path, host path, or - (stdout)" };
        var command = new Command("cp", "Copy a file into or out of a sandbox (one side ID:/guest/path)") { source, destination };
        context.SetAction(command, async (parse, client, ct) =>
        {
            var src = parse.GetValue(source)!;
            var dst = parse.GetValue(destination)!;
            switch (ParseGuest(src), ParseGuest(dst))
            {
                case (null, { } to):
                    await UploadAsync(client, src, to, ct);
                    break;
                case ({ } from, null):
                    await DownloadAsync(client, from, dst, ct);
                    break;
                case (null, null):
                    throw new UsageException("one side must be a sandbox path, ID:/path/in/guest");
                default:
                    throw new UsageException("copying between two sandboxes is not supported; one side must be a host path");
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private sealed record GuestLocation(string Id, string Path)
    {
        public string FileName => Path[(Path.LastIndexOf('/') + 1)..];
    }

    /// <summary>
    /// ID:PATH, with the id restricted to characters ids use so that host paths containing a
    /// colon can still be named (e.g. ./a:b).
    /// </summary>
    private static GuestLocation? ParseGuest(string arg)
    {
        var m = GuestRegex().Match(arg);
        if (!m.Success)
            return null;
        var path = m.Groups["path"].Value;
        if (!path.StartsWith('/'))
            throw new UsageException($"guest path in '{arg}' must be absolute (ID:/path)");
        return new GuestLocation(m.Groups["id"].Value, path);
    }

    private static async Task UploadAsync(BoughClient client, string host, GuestLocation to, CancellationToken ct)
    {
        var guestPath = to.Path;
        if (host == "-")
        {
            if (guestPath.EndsWith('/'))
                throw new UsageException("name the guest file when copying from stdin (ID:/dir/name)");
            await using var stdin = Terminal.OpenStdin();
            await client.UploadFileAsync(to.Id, guestPath, stdin, ct);
            return;
        }

        if (Directory.Exists(host))
            throw new UsageException($"'{host}' is a directory; only single files can be copied");
        if (guestPath.EndsWith('/'))
            guestPath += Path.GetFileName(host);
        await using var file = new FileStream(host, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize,
            FileOptions.Asynchronous | FileOptions.SequentialScan);
        await client.UploadFileAsync(to.Id, guestPath, file, ct);
    }

    private static async Task DownloadAsync(BoughClient client, GuestLocation from, string host, CancellationToken ct)
    {
        if (host == "-")
        {
            await using var stdout = Terminal.OpenStdout();
            await client.DownloadFileAsync(from.Id, from.Path, stdout, ct);
            await stdout.FlushAsync(ct);
            return;
        }

        var target = host;
        if (Directory.Exists(host) || host.EndsWith('/'))
        {
            if (from.FileName.Length == 0)
                throw new UsageException($"'{from.Path}' names a directory; only single files can be copied");
            target = Path.Combine(host, from.FileName);
        }

        // Download next to the target and rename at the end, so a failed copy never leaves a
        // truncated file under the name the user asked for (or clobbers a good one).
        var fullTarget = Path.GetFullPath(target);
        var directory = Path.GetDirectoryName(fullTarget)!;
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"no such directory: {directory}");
        var partial = Path.Combine(directory, $".{Path.GetFileName(fullTarget)}.{Guid.NewGuid():n}.part");
        try
        {
            await using (var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
                await client.DownloadFileAsync(from.Id, from.Path, file, ct);
            File.Move(partial, fullTarget, overwrite: true);
        }
        finally
        {
            File.Delete(partial); // no-op after a successful move
        }
    }

    [GeneratedRegex(@"^(?<id>[A-Za-z0-9][A-Za-z0-9_.-]*):(?<path>.*)$")]
    private static partial Regex GuestRegex();
}
