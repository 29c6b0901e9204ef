using System.CommandLine;
using Bough.HostSetup;
using Bough.Server.Security;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough token [--rotate]</c>: prints the daemon's API token from its data directory, or
/// replaces it. Runs on the daemon's host as its user (the file is 0600); a running daemon
/// notices the new file on its next request, so the old token stops working at once.
/// </summary>
internal static class TokenVerb
{
    public static Command Build(CliContext context)
    {
        var rotate = new Option<bool>("--rotate")
        {
            Description = "Replace the token with a new random one (the old one stops working at once) and print it",
        };
        var cmd = new Command("token", "Print the daemon's API token (<data dir>/api-token), or replace it") { rotate };
        cmd.SetAction(parse =>
        {
            var dataDir = DataDirectory.Resolve(parse.GetValue(context.DataDir));
            var path = ApiTokenFile.PathIn(dataDir);
            try
            {
                if (parse.GetValue(rotate))
                {
                    DataDirectory.EnsurePrivate(dataDir);
                    context.Terminal.Out.WriteLine(ApiTokenFile.Rotate(path));
                    context.Terminal.Err.WriteLine($"bough: new token written to {path}; the previous one no longer works (clients need the new one)");
                    return ExitCodes.Ok;
                }
                var token = ApiTokenFile.TryRead(path);
                if (string.IsNullOrEmpty(token))
                {
                    context.Terminal.Error(
                        $"no API token at {path} yet: `bough serve` writes one on first start, or `bough token --rotate` makes one now " +
                        $"(another data directory? use --data-dir or ${DataDirectory.EnvironmentVariable})");
                    return ExitCodes.Error;
                }
                context.Terminal.Out.WriteLine(token);
                return ExitCodes.Ok;
            }
            catch (UnauthorizedAccessException)
            {
                context.Terminal.Error($"cannot access {path}: run this as the user the daemon runs as (it is readable by that user only)");
                return ExitCodes.Error;
            }
            catch (IOException ex)
            {
                context.Terminal.Error($"{path}: {ex.Message}");
                return ExitCodes.Error;
            }
        });
        return cmd;
    }
}
