using System.CommandLine;
using Bough.Client;

namespace Bough.Cli.Commands;

/// <summary>
/// <c>bough dashboard</c>: prints the dashboard's address for the chosen daemon, with the token as a one-time
/// <c>?token=</c> (the page removes it from the address bar and keeps it in the browser), after checking that
/// the daemon answers and takes the token. <c>--no-token</c> prints the bare address (the page then asks).
/// </summary>
internal static class DashboardVerb
{
    public static Command Build(CliContext context)
    {
        var noToken = new Option<bool>("--no-token") { Description = "Print the address without the token (the sign-in page asks for it)" };
        var command = new Command("dashboard", "Print the address of the daemon's dashboard (/ui/), signed in with this CLI's token") { noToken };
        context.SetAction(command, async (parse, client, ct) =>
        {
            if (client.IsUnixSocket)
                throw new UsageException("this daemon is reached over a Unix socket, which browsers cannot open: " +
                    "give `bough serve` a TCP listener too (--listen http://127.0.0.1:7878) and point --url at it");
            await client.ListSandboxesAsync(ct); // answers, and takes this token: the link will work
            var url = new Uri(client.BaseUrl, "/ui/").ToString();
            if (!parse.GetValue(noToken) && BoughToken.Find(parse.GetValue(context.DataDir)).Value is { Length: > 0 } token)
                url += "?token=" + Uri.EscapeDataString(token);
            context.Terminal.Out.WriteLine(url);
            return ExitCodes.Ok;
        });
        return command;
    }
}
