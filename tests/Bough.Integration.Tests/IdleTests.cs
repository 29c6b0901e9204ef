using System.Diagnostics;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// What an idle sandbox costs its host, checked as behaviour (the figures are in docs/benchmarks.md): the guest's
/// legacy PIT, which nothing uses, is stopped by the agent when it starts, so QEMU no longer emulates the
/// firmware's 18.2 Hz square wave (36 main-loop wake-ups a second per VM). The PIT's state is read in the guest
/// with the i8254 read-back command by a tiny program compiled here with gcc and uploaded.
/// </summary>
[Collection("daemon")]
public sealed class IdleTests(DaemonFixture f)
{
    /// <summary>
    /// Latches channel 0's status (read-back command 0xE2: status only, counter 0) and exits with the status byte:
    /// bit 7 OUT, bit 6 null count, bits 5-4 access mode, bits 3-1 operating mode, bit 0 BCD.
    /// </summary>
    private const string StatusProgram = """
        static long sys3(long n, long a, long b, long c)
        {
            long r;
            __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
            return r;
        }
        void _start(void)
        {
            unsigned char status = 255;
            if (sys3(173 /* ioperm */, 0x40, 4, 1) == 0)
            {
                __asm__ volatile ("outb %0, %1" : : "a"((unsigned char)0xE2), "Nd"((unsigned short)0x43));
                __asm__ volatile ("inb %1, %0" : "=a"(status) : "Nd"((unsigned short)0x40));
            }
            sys3(60 /* exit */, status, 0, 0);
        }
        """;

    [Fact]
    public async Task The_agent_stops_the_legacy_pit_and_restored_sandboxes_inherit_it_stopped()
    {
        var program = await CompileAsync();
        // A default create restores from the shape's boot snapshot: the PIT was stopped by the agent of the cold boot
        // that made it, and the restore carried the device state over.
        var sb = await f.Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest());
        try
        {
            await using (var content = File.OpenRead(program))
                await f.Daemon.Client.UploadFileAsync(sb.Id, "/tmp/pit-status", content);
            var run = await f.Daemon.Client.ExecAsync(sb.Id, new ExecRequest { Cmd = ["sh", "-c", "chmod +x /tmp/pit-status; /tmp/pit-status"] });
            Assert.NotEqual(255, run.ExitCode); // ioperm refused: the check itself could not run
            var mode = (run.ExitCode >> 1) & 7;
            Assert.True(mode == 0, $"PIT channel 0 is in mode {mode} (status 0x{run.ExitCode:x2}); the firmware leaves it in mode 3, a running square wave");
        }
        finally
        {
            await f.Daemon.Client.DeleteSandboxAsync(sb.Id);
        }
    }

    private static async Task<string> CompileAsync()
    {
        var dir = Directory.CreateTempSubdirectory("bough-pit-status-").FullName;
        var source = Path.Combine(dir, "pit-status.c");
        var binary = Path.Combine(dir, "pit-status");
        await File.WriteAllTextAsync(source, StatusProgram);
        using var gcc = Process.Start(new ProcessStartInfo("gcc",
            ["-Os", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-fno-stack-protector", "-o", binary, source])
        {
            RedirectStandardError = true,
        })!;
        var errors = await gcc.StandardError.ReadToEndAsync();
        await gcc.WaitForExitAsync();
        Assert.True(gcc.ExitCode == 0, $"gcc failed: {errors}");
        return binary;
    }
}
