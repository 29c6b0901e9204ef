using System.CommandLine;
using Bough.Engine;
using Bough.Engine.Boot;
using Bough.Engine.Setup;
using Bough.HostSetup;
using Bough.Images;
using Bough.Network;
using Bough.Server;
using Bough.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace Bough.Cli.Commands;

/// <summary>
/// The commands that run on the daemon's host rather than against its API: <c>serve</c>
/// (the composition root), <c>setup</c> and <c>doctor</c>.
/// </summary>
internal static class HostCommands
{
    public static void Register(RootCommand root, CliContext context)
    {
        var terminal = context.Terminal;
        root.Subcommands.Add(Serve(terminal, context.DataDir));
        root.Subcommands.Add(Setup(terminal, context.DataDir));
        root.Subcommands.Add(Doctor(terminal, context.DataDir));
    }

    private static Option<string> AccelOption() => new("--accel")
    {
        Description = "Acceleration: auto (KVM only where it really runs a Linux guest, else TCG), kvm or tcg",
        DefaultValueFactory = _ => "auto",
        HelpName = "auto|kvm|tcg",
    };

    private static Command Serve(Terminal terminal, Option<string?> dataDir)
    {
        var listen = new Option<string[]>("--listen")
        {
            Description = $"Where to listen; repeat for several: http://127.0.0.1:PORT (loopback), https://IP:PORT " +
                          $"(with --tls-cert and --tls-key), unix:/path.sock (mode 0600). Default {ServerOptions.DefaultListen}",
            HelpName = "URL",
        };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "PEM certificate (chain) for https:// listeners", HelpName = "FILE" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key of --tls-cert", HelpName = "FILE" };
        var insecure = new Option<bool>("--insecure-plaintext")
        {
            Description = "Allow plain HTTP on a non-loopback address (only where the network is already encrypted: the token crosses it in clear)",
        };
        var accel = AccelOption();
        var keep = new Option<bool>("--keep-sandboxes")
        {
            Description = "On shutdown leave VMs running, to be adopted by the next daemon (default: stop them)",
        };
        var importDir = new Option<string?>("--import-dir")
        {
            Description = "The only directory `images import` may read archives from (default <data dir>/import)",
            HelpName = "DIR",
        };
        var uidBase = new Option<int?>("--vm-uid-base")
        {
            Description = $"First of the {new VmJailOptions().UidCount} uids sandbox VMs run as (default {VmJailOptions.DefaultUidBase}); " +
                          "a second daemon on this host needs a range of its own",
            HelpName = "UID",
        };
        var domain = new Option<string?>("--domain")
        {
            Description = "DNS name sandbox ports are served under, as http(s)://PORT-ID.DOMAIN/ (point *.DOMAIN at the daemon; " +
                          "may end in :PORT). Default localhost:<listen port>",
            HelpName = "NAME",
        };
        var cmd = new Command("serve", "Run the Bough daemon (prepares the host first)") { listen, tlsCert, tlsKey, insecure, domain, accel, keep, importDir, uidBase };
        cmd.SetAction((parse, ct) => Guard(terminal, async () =>
        {
            ProcessUmask.Set(ProcessUmask.Daemon); // first: every file the daemon (or a tool it runs) creates is owner-only
            var options = new EngineOptions
            {
                DataDir = DataDirectory.Resolve(parse.GetValue(dataDir)),
                Accel = ValidateAccel(parse.GetValue(accel)),
                StopSandboxesOnShutdown = !parse.GetValue(keep),
            };
            if (parse.GetValue(importDir) is { Length: > 0 } imports) options.ImportDir = Path.GetFullPath(imports);
            if (parse.GetValue(uidBase) is { } firstUid) options.Jail.UidBase = firstUid;
            var server = new ServerOptions
            {
                TokenFile = ApiTokenFile.PathIn(options.DataDir),
                TlsCertificatePath = parse.GetValue(tlsCert),
                TlsKeyPath = parse.GetValue(tlsKey),
                InsecurePlaintext = parse.GetValue(insecure),
                Domain = parse.GetValue(domain),
            };
            foreach (var l in parse.GetValue(listen) ?? [])
                server.Listen.Add(l);
            try
            {
                // Before minutes of host preparation: a refused listener should fail at once.
                foreach (var warning in server.Validate())
                    terminal.Warning(warning);
                options.Validate();
            }
            catch (Exception ex) when (ex is ServerConfigurationException or ArgumentException)
            {
                terminal.Error(ex.Message);
                return ExitCodes.Usage;
            }

            PreparedHost host;
            try
            {
                DataDirectory.EnsurePrivate(options.DataDir);
                host = await PrepareAsync(terminal, options, ct);
            }
            catch (Exception ex) when (ex is SetupException or CommandFailedException or IOException)
            {
                terminal.Error(ex.Message);
                return ExitCodes.Error;
            }
            // Everything the daemon writes lives under the 0700 data dir and is owner-only itself (umask 077,
            // set above). Image builds give guest files explicit modes and run debootstrap and apt under
            // umask 022, so the guest's files keep the modes they would have anywhere else.
            terminal.Err.WriteLine($"bough: data dir {options.DataDir}; acceleration {host.Accel.Accel} ({host.Accel.Reason})");

            WebApplication app;
            try
            {
                app = BoughServer.Build(server,
                    services => services.AddBoughEngine(options, host),
                    logging => logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }));
            }
            catch (Exception ex) when (ex is ServerConfigurationException or InvalidDataException or IOException or UnauthorizedAccessException)
            {
                terminal.Error(ex.Message);
                return ExitCodes.Error;
            }
            await using (app)
            {
                try { await app.StartAsync(ct); }
                catch (EngineStartException ex)
                {
                    terminal.Error(ex.Message);
                    return ExitCodes.Error;
                }
                terminal.Err.WriteLine($"bough: listening on {string.Join(", ", app.Urls)}; API token in {server.TokenFile}");
                await app.WaitForShutdownAsync(ct);
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Setup(Terminal terminal, Option<string?> dataDir)
    {
        var accel = AccelOption();
        var cmd = new Command("setup", "Install host packages, fetch the guest kernel, build the base image") { accel };
        cmd.SetAction((parse, ct) => Guard(terminal, async () =>
        {
            ProcessUmask.Set(ProcessUmask.Daemon); // as `serve`: the kernel and base image it builds are the daemon's files
            var options = new EngineOptions
            {
                DataDir = DataDirectory.Resolve(parse.GetValue(dataDir)),
                Accel = ValidateAccel(parse.GetValue(accel)),
            };
            try
            {
                DataDirectory.EnsurePrivate(options.DataDir);
                var host = await PrepareAsync(terminal, options, ct);
                terminal.Out.WriteLine($"data dir     {options.DataDir}");
                terminal.Out.WriteLine($"kernel       {host.Kernel.Version}");
                terminal.Out.WriteLine($"base image   {host.BaseImage.DiskPath}");
                terminal.Out.WriteLine($"acceleration {host.Accel.Accel}: {host.Accel.Reason}");
                return ExitCodes.Ok;
            }
            catch (Exception ex) when (ex is SetupException or CommandFailedException or IOException)
            {
                terminal.Error(ex.Message);
                return ExitCodes.Error;
            }
        }));
        return cmd;
    }

    private static Command Doctor(Terminal terminal, Option<string?> dataDir)
    {
        var accel = AccelOption();
        var cmd = new Command("doctor", "Check the host: QEMU, acceleration, kernel, base image, data dir, disk") { accel };
        cmd.SetAction((parse, ct) => Guard(terminal, async () =>
        {
            var dir = DataDirectory.Resolve(parse.GetValue(dataDir));
            var results = (await Images.Doctor.RunAsync(dir, ValidateAccel(parse.GetValue(accel)), ct)).ToList();
            results.Add(await FirewallCheckAsync(ct));
            if (terminal.StdoutIsTerminal)
            {
                var table = new Table().AddColumns("", "check", "detail", "fix");
                foreach (var r in results)
                    table.AddRow(r.Ok ? "[green]pass[/]" : "[red]FAIL[/]", Markup.Escape(r.Name),
                        Markup.Escape(r.Detail), Markup.Escape(r.Fix ?? ""));
                terminal.Ansi.Write(table);
            }
            else
            {
                foreach (var r in results)
                    terminal.Out.WriteLine($"{(r.Ok ? "pass" : "FAIL")}  {r.Name}: {r.Detail}{(r.Fix is null ? "" : $" (fix: {r.Fix})")}");
            }
            return results.All(r => r.Ok) ? ExitCodes.Ok : ExitCodes.Error;
        }));
        return cmd;
    }

    /// <summary>Whether nft runs and the kernel takes every kind of rule the sandbox firewall writes (nft --check: nothing changes).</summary>
    private static async Task<CheckResult> FirewallCheckAsync(CancellationToken ct)
    {
        try
        {
            using var firewall = new NftablesFirewall(new NftablesFirewallOptions(), NullLogger<NftablesFirewall>.Instance);
            await firewall.CheckAsync(ct);
            return new CheckResult("firewall", true, "nftables accepts the sandbox egress rules (checked, nothing changed)");
        }
        catch (Exception ex) when (ex is FirewallException or IOException or System.ComponentModel.Win32Exception)
        {
            return new CheckResult("firewall", false, ex.Message,
                "run as root with nftables installed (apt-get install nftables); sandboxes cannot start without it");
        }
    }

    private static async Task<int> Guard(Terminal terminal, Func<Task<int>> action)
    {
        try { return await action(); }
        catch (UsageException ex) { terminal.Error(ex.Message); return ExitCodes.Usage; }
        catch (OperationCanceledException) { return ExitCodes.Interrupted; }
    }

    private static string ValidateAccel(string? value) => value is "auto" or "kvm" or "tcg"
        ? value
        : throw new UsageException($"--accel must be auto, kvm or tcg (got '{value}')");

    /// <summary>Runs host preparation with a live progress display (plain lines when not a terminal).</summary>
    private static async Task<PreparedHost> PrepareAsync(Terminal terminal, EngineOptions options, CancellationToken ct)
    {
        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var preparer = new HostPreparer(loggers);
        if (!terminal.StderrIsTerminal)
        {
            string? last = null;
            var plain = new Progress<SetupProgress>(p =>
            {
                var line = $"[{p.Stage}] {p.Message}";
                if (p.Total is > 0 && p.Done is { } d) line += $" {d * 100 / p.Total:0}%";
                if (line == last || (p.Total is > 0 && p.Done != p.Total && p.Done % (8 << 20) > 256 * 1024)) return;
                last = line;
                terminal.Err.WriteLine(line);
            });
            return await preparer.PrepareAsync(options, plain, ct);
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        PreparedHost? result = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var progress = new SyncProgress<SetupProgress>(p =>
                {
                    if (!tasks.TryGetValue(p.Stage, out var task))
                    {
                        foreach (var t in tasks.Values) if (!t.IsFinished) { t.Value = t.MaxValue; t.StopTask(); }
                        task = tasks[p.Stage] = ctx.AddTask(Markup.Escape(p.Message), maxValue: p.Total ?? 1);
                        task.IsIndeterminate = p.Total is null;
                    }
                    task.Description = Markup.Escape($"{p.Stage}: {p.Message}");
                    if (p.Total is > 0) { task.IsIndeterminate = false; task.MaxValue = p.Total.Value; task.Value = p.Done ?? 0; }
                });
                result = await preparer.PrepareAsync(options, progress, ct);
                foreach (var t in tasks.Values) { t.Value = t.MaxValue; t.StopTask(); }
            });
        return result!;
    }

    /// <summary>IProgress that reports on the caller's thread (Spectre's context is not thread-safe).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        private readonly object _gate = new();
        public void Report(T value) { lock (_gate) report(value); }
    }
}
