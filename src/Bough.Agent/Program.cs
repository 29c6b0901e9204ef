using Bough.Agent;
using Bough.Agent.Transport;
using Bough.Protocol;

// bough-agent: runs as root inside the guest (busybox init or /.bough/init respawns it). See docs/protocol.md.
return await AgentProgram.RunAsync(args);

namespace Bough.Agent
{
    internal static class AgentProgram
    {
        public const string DefaultPortName = "org.bough.agent";

        private const string Usage = """
            usage: bough-agent [options]
              --version               print version and exit
              --port-name NAME        virtio-serial port name (default org.bough.agent)
              --device PATH           open this device instead of searching /sys/class/virtio-ports
              --listen-unix PATH      test mode: listen on a unix socket, one channel per connection
              --hostname-file PATH    file rewritten by configure.hostname (default /etc/hostname)
              --etc DIR               where exec users are looked up (DIR/passwd, DIR/group; default /etc)
              --max-list-entries N    entries one file listing may have (default 100000)
              --max-processes N       running processes the process table holds (default 256)
              --proc-buffer-bytes N   output kept per table process for late readers (default 1048576)
              --verbose               debug logging
            """;

        public static async Task<int> RunAsync(string[] args)
        {
            string portName = Environment.GetEnvironmentVariable("BOUGH_AGENT_PORT") ?? DefaultPortName;
            string? device = null, listenUnix = null;
            string hostnameFile = "/etc/hostname";
            string etcDir = "/etc";
            bool verbose = false;
            int maxListEntries = Operations.ListOperation.DefaultMaxListEntries;
            var processOptions = new Processes.ProcessTableOptions();
            for (int i = 0; i < args.Length; i++)
            {
                string? Next() => i + 1 < args.Length ? args[++i] : null;
                switch (args[i])
                {
                    case "--version":
                        Console.Out.WriteLine($"bough-agent {AgentState.Version} (protocol {ProtocolConstants.Version})");
                        return 0;
                    case "--help" or "-h":
                        Console.Out.WriteLine(Usage);
                        return 0;
                    case "--port-name": portName = Next() ?? ""; break;
                    case "--device": device = Next(); break;
                    case "--listen-unix": listenUnix = Next(); break;
                    case "--hostname-file": hostnameFile = Next() ?? ""; break;
                    case "--etc": etcDir = Next() ?? ""; break;
                    case "--max-list-entries":
                        if (!int.TryParse(Next(), System.Globalization.CultureInfo.InvariantCulture, out maxListEntries) || maxListEntries < 1)
                        {
                            Console.Error.WriteLine($"--max-list-entries needs a positive number\n{Usage}");
                            return 2;
                        }
                        break;
                    case "--max-processes":
                        if (!int.TryParse(Next(), System.Globalization.CultureInfo.InvariantCulture, out int maxProcesses) || maxProcesses < 1)
                        {
                            Console.Error.WriteLine($"--max-processes needs a positive number\n{Usage}");
                            return 2;
                        }
                        processOptions = processOptions with { MaxRunning = maxProcesses };
                        break;
                    case "--proc-buffer-bytes":
                        if (!long.TryParse(Next(), System.Globalization.CultureInfo.InvariantCulture, out long bufferBytes) || bufferBytes < 4096)
                        {
                            Console.Error.WriteLine($"--proc-buffer-bytes needs a number >= 4096\n{Usage}");
                            return 2;
                        }
                        processOptions = processOptions with
                        {
                            BufferBytes = bufferBytes,
                            MinBufferBytes = Math.Min(processOptions.MinBufferBytes, bufferBytes),
                            ExitedBufferBytes = Math.Min(processOptions.ExitedBufferBytes, bufferBytes),
                        };
                        break;
                    case "--verbose": verbose = true; break;
                    default:
                        Console.Error.WriteLine($"unknown argument '{args[i]}'\n{Usage}");
                        return 2;
                }
            }
            if (portName.Length == 0 || hostnameFile.Length == 0 || etcDir.Length == 0 || (args.Contains("--listen-unix") && string.IsNullOrEmpty(listenUnix)))
            {
                Console.Error.WriteLine(Usage);
                return 2;
            }

            var log = new AgentLog(Console.Error, verbose);
            var state = new AgentState(log, hostnameFile, etcDir, maxListEntries, processOptions);
            using var stop = new CancellationTokenSource();
            using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
                System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
            using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(
                System.Runtime.InteropServices.PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
            log.Info($"starting version {AgentState.Version} pid {Environment.ProcessId}");
            try
            {
                if (listenUnix != null) await new UnixListenerTransport(listenUnix, state).RunAsync(stop.Token);
                else
                {
                    // Only when the port was found by name, which only a Bough VM offers: with --device (tests on a
                    // host) the helper would reprogram the host's own PIT.
                    if (device is null) Native.LegacyTimer.Stop(log);
                    await new VirtioPortTransport(portName, device, state).RunAsync(stop.Token);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            log.Info("stopped");
            return 0;
        }
    }
}
