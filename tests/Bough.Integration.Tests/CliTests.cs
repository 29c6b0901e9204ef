using System.Diagnostics;
using System.Security.Cryptography;

namespace Bough.Integration.Tests;

/// <summary>The real `bough` CLI against the shared daemon: output, exit codes, file copies.</summary>
[Collection("daemon")]
public sealed class CliTests(DaemonFixture f)
{
    private async Task<(int Code, string Out, string Err)> Bough(string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bough.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["BOUGH_URL"] = f.Daemon.Url.ToString().TrimEnd('/');
        psi.Environment["BOUGH_TOKEN"] = f.Daemon.Token; // the token from the environment (CliRunner lets the CLI find the file)
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }

    [Fact]
    public async Task Timeout_and_network_change_a_running_sandbox_and_say_what_is_in_force()
    {
        var t = await Bough(null, "timeout", f.Primary.Id, "3600", "--on-timeout", "pause");
        Assert.True(t.Code == 0, t.Err);
        Assert.Contains("(pause)", t.Out, StringComparison.Ordinal);
        var shown = await f.Daemon.Client.GetSandboxAsync(f.Primary.Id);
        Assert.Equal("pause", shown.OnTimeout);
        Assert.InRange(shown.EndAt!.Value, DateTimeOffset.UtcNow.AddMinutes(55), DateTimeOffset.UtcNow.AddMinutes(61));

        var n = await Bough(null, "network", f.Primary.Id, "--deny-out", "192.0.2.0/24");
        Assert.True(n.Code == 0, n.Err);
        Assert.Contains("denyOut   192.0.2.0/24", n.Out, StringComparison.Ordinal);
        var cleared = await Bough(null, "network", f.Primary.Id, "--clear-deny-out");
        Assert.Contains("denyOut   -", cleared.Out, StringComparison.Ordinal);

        var bad = await Bough(null, "network", f.Primary.Id, "--allow-out", "10.0.0.0/33");
        Assert.Equal(1, bad.Code);
        Assert.Contains("allowOut", bad.Err, StringComparison.Ordinal);
        var badAction = await Bough(null, "timeout", f.Primary.Id, "60", "--on-timeout", "explode");
        Assert.NotEqual(0, badAction.Code);
        Assert.Contains("--on-timeout must be kill or pause", badAction.Err, StringComparison.Ordinal);
        // Leave the shared sandbox without a deadline worth worrying about for the other tests.
        await Bough(null, "timeout", f.Primary.Id, "86400", "--on-timeout", "kill");
    }

    [Fact]
    public async Task Dashboard_prints_a_sign_in_link_that_the_daemon_serves()
    {
        var r = await Bough(null, "dashboard");
        Assert.True(r.Code == 0, r.Err);
        var link = new Uri(r.Out.Trim());
        Assert.Equal("/ui/", link.AbsolutePath);
        Assert.Equal("?token=" + Uri.EscapeDataString(f.Daemon.Token), link.Query);
        // The page itself needs no token (it carries no data until the browser signs in over its circuit)...
        using var http = new HttpClient();
        var page = await http.GetAsync(new Uri(link.GetLeftPart(UriPartial.Path)));
        Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<base href=\"/ui/\"", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        // ...while the API beside it still does.
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync(new Uri(link, "/v1/sandboxes"))).StatusCode);

        var bare = await Bough(null, "dashboard", "--no-token");
        Assert.Equal(link.GetLeftPart(UriPartial.Path), bare.Out.Trim());
    }

    [Fact]
    public async Task Doctor_checks_the_firewall_the_sandboxes_depend_on()
    {
        var r = await Bough(null, "doctor", "--data-dir", f.Daemon.DataDir);
        Assert.Matches(@"pass\s+firewall", r.Out + r.Err);
    }

    [Fact]
    public async Task Exec_streams_output_and_exits_with_the_commands_code()
    {
        var r = await Bough(null, "exec", f.Primary.Id, "--", "sh", "-c", "echo out; echo err >&2; exit 7");
        Assert.Equal(7, r.Code);
        Assert.Equal("out\n", r.Out);
        Assert.Equal("err\n", r.Err);

        var killed = await Bough(null, "exec", f.Primary.Id, "--", "sh", "-c", "kill -9 $$");
        Assert.Equal(137, killed.Code);

        var timedOut = await Bough(null, "exec", "--timeout", "1", f.Primary.Id, "--", "sleep", "30");
        Assert.Equal(124, timedOut.Code);

        var stdin = await Bough("piped in\n", "exec", "--stdin", f.Primary.Id, "--", "cat");
        Assert.Equal("piped in\n", stdin.Out);
    }

    [Fact]
    public async Task Cp_moves_files_in_and_out_byte_for_byte()
    {
        var src = Path.GetTempFileName();
        var back = Path.GetTempFileName();
        try
        {
            var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
            await File.WriteAllBytesAsync(src, data);
            Assert.Equal(0, (await Bough(null, "cp", src, $"{f.Primary.Id}:/root/cli/copied.bin")).Code);
            Assert.Equal(0, (await Bough(null, "cp", $"{f.Primary.Id}:/root/cli/copied.bin", back)).Code);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(await File.ReadAllBytesAsync(back)));
        }
        finally
        {
            File.Delete(src);
            File.Delete(back);
        }
    }

    [Fact]
    public async Task Errors_are_one_clear_line_and_exit_1()
    {
        var r = await Bough(null, "show", "sb-doesnotexist");
        Assert.Equal(1, r.Code);
        Assert.StartsWith("error:", r.Err.Trim());
        Assert.Contains("sandbox_not_found", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));

        var usage = await Bough(null, "create", "--vcpus", "lots");
        Assert.Equal(2, usage.Code);
    }

    [Fact]
    public async Task Ls_lists_the_sandbox_in_plain_text_when_piped()
    {
        var r = await Bough(null, "ls");
        Assert.Equal(0, r.Code);
        Assert.Contains(f.Primary.Id, r.Out);
        Assert.DoesNotContain("\u001b[", r.Out); // no colour codes when not a terminal
    }
}
