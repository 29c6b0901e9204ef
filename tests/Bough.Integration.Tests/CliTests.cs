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
