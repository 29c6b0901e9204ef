using System.ComponentModel;
using System.Diagnostics;

namespace Bough.Network;

/// <summary>
/// Runs the <c>nft</c> binary. A script goes in on stdin (<c>nft -f -</c>), so the whole change is
/// one transaction. Failures become <see cref="FirewallException"/> with nft's own message and a
/// hint at the usual causes.
/// </summary>
internal sealed class NftCli(string nftPath, TimeSpan timeout)
{
    /// <summary>Applies <paramref name="script"/> as one transaction.</summary>
    public Task ApplyAsync(string script, string what) => RunAsync(["-f", "-"], script, what);

    /// <summary>Runs <c>nft ARGS</c> and returns its standard output.</summary>
    /// <remarks>
    /// Deliberately not cancellable once started: nft either commits its transaction or not, and
    /// killing it half way would leave the caller unsure which; it takes milliseconds. The
    /// <see cref="NftablesFirewallOptions.CommandTimeout"/> still bounds a hung one.
    /// </remarks>
    public async Task<string> RunAsync(IReadOnlyList<string> args, string? stdin, string what)
    {
        var psi = new ProcessStartInfo(nftPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new FirewallException(
                $"cannot {what}: '{nftPath}' could not be run ({e.Message}); install the Debian package 'nftables'", e);
        }

        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            if (stdin is not null)
                await process.StandardInput.WriteAsync(stdin.AsMemory(), deadline.Token);
            process.StandardInput.Close();
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new FirewallException($"cannot {what}: nft did not finish within {timeout.TotalSeconds:0} s");
        }
        catch (IOException e)
        {
            // nft died before reading its script: report what it said.
            await process.WaitForExitAsync(CancellationToken.None);
            throw Failure(what, process.ExitCode, await stderr, e);
        }

        if (process.ExitCode != 0)
            throw Failure(what, process.ExitCode, await stderr, null);
        return await stdout;
    }

    private static FirewallException Failure(string what, int exitCode, string stderr, Exception? inner)
    {
        var said = stderr.Trim();
        var hint = said.Contains("Operation not permitted", StringComparison.Ordinal)
            ? " (changing the firewall needs root or CAP_NET_ADMIN)"
            : said.Contains("not supported", StringComparison.OrdinalIgnoreCase) || said.Contains("No such file or directory", StringComparison.Ordinal)
                ? " (does the kernel have nf_tables with the inet family, fib, reject and meta skuid? try 'modprobe nf_tables')"
                : "";
        var message = $"cannot {what}: nft exited with {exitCode}{hint}: {(said.Length == 0 ? "(no message)" : said)}";
        return inner is null ? new FirewallException(message) : new FirewallException(message, inner);
    }
}
