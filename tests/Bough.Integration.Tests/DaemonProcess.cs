using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Runtime.InteropServices;
using Bough.Client;

namespace Bough.Integration.Tests;

/// <summary>
/// A real `bough serve` process (the CLI assembly built next to the tests), on a free
/// loopback port with its own data directory. Tests talk to it over HTTP exactly as users do,
/// with the API token the daemon wrote to its data directory (<see cref="Http"/> and
/// <see cref="Client"/> send it).
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DaemonProcess(Process process, string dataDir, Uri url, int vmUidBase)
    {
        _process = process;
        VmUidBase = vmUidBase;
        DataDir = dataDir;
        Url = url;
        Http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(10) };
        Client = new BoughClient(Http);
    }

    /// <summary>
    /// The first uid of this daemon's VM range (<c>--vm-uid-base</c>), derived from its data dir: a restart over the same
    /// dir keeps it (adopted VMs stay in range), and daemons of different tests never share a range or firewall table.
    /// </summary>
    public int VmUidBase { get; }

    /// <summary>The <see cref="VmUidBase"/> a daemon over <paramref name="dataDir"/> gets.</summary>
    public static int VmUidBaseFor(string dataDir)
    {
        uint h = 2166136261;
        foreach (char c in Path.GetFullPath(dataDir)) h = (h ^ c) * 16777619;
        return 1_000_000_000 + (int)(h % 10_000) * 65_536;
    }

    /// <summary>The daemon's token file.</summary>
    public string TokenFile => Path.Combine(DataDir, "api-token");

    /// <summary>The token <see cref="Http"/> sends (as read from <see cref="TokenFile"/> by <see cref="ReloadToken"/>).</summary>
    public string Token { get; private set; } = "";

    /// <summary>Reads the daemon's token file again (after a rotation) and sends that token from now on.</summary>
    public void ReloadToken()
    {
        Token = File.ReadAllText(TokenFile).Trim();
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
    }

    /// <summary>Environment for a CLI child process that talks to this daemon and finds the token in its data dir.</summary>
    public void ConfigureCli(ProcessStartInfo psi)
    {
        psi.Environment["BOUGH_URL"] = Url.ToString().TrimEnd('/');
        psi.Environment["BOUGH_HOME"] = DataDir;
        psi.Environment.Remove("BOUGH_TOKEN");
    }

    public string DataDir { get; }
    public Uri Url { get; }
    public HttpClient Http { get; }
    public BoughClient Client { get; }
    public int Pid => _process.Id;
    public string Output { get { lock (_output) return _output.ToString(); } }

    public static async Task<DaemonProcess> StartAsync(string dataDir, params string[] extraArgs)
    {
        var port = FreePort();
        var url = new Uri($"http://127.0.0.1:{port}");
        var cli = Path.Combine(AppContext.BaseDirectory, "bough.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { cli, "serve", "--listen", url.ToString().TrimEnd('/'), "--data-dir", dataDir })
            psi.ArgumentList.Add(a);
        foreach (var a in extraArgs) psi.ArgumentList.Add(a);
        int uidBase = VmUidBaseFor(dataDir);
        if (!extraArgs.Contains("--vm-uid-base"))
        {
            psi.ArgumentList.Add("--vm-uid-base");
            psi.ArgumentList.Add(uidBase.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        psi.Environment["BOUGH_AGENT_PATH"] = Path.Combine(AppContext.BaseDirectory, "agent", "bough-agent");
        psi.Environment["NO_COLOR"] = "1";
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the daemon");
        var d = new DaemonProcess(p, dataDir, url, uidBase);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (d._output) d._output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (d._output) d._output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            await d.WaitHealthyAsync(TimeSpan.FromMinutes(15));
            d.ReloadToken(); // written before the daemon listens
        }
        catch
        {
            await d.DisposeAsync();
            throw;
        }
        return d;
    }

    /// <summary>
    /// Runs `bough serve` with exactly <paramref name="args"/> (plus the agent path) for a
    /// configuration the daemon must refuse: it exits on its own, before preparing anything.
    /// </summary>
    public static async Task<(int Code, string Output)> RunToExitAsync(TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bough.dll"));
        psi.ArgumentList.Add("serve");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["BOUGH_AGENT_PATH"] = Path.Combine(AppContext.BaseDirectory, "agent", "bough-agent");
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the daemon");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(limit);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"bough serve {string.Join(' ', args)} was still running after {limit}: it did not refuse");
        }
        return (p.ExitCode, await stdout + await stderr);
    }

    private async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var probe = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(2) };
        var healthy = await Poll.UntilAsync(async () =>
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"the daemon exited with {_process.ExitCode}:\n{Output}");
            try
            {
                using var r = await probe.GetAsync("/healthz");
                return r.StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException) { return false; }
            catch (TaskCanceledException) { return false; }
        }, timeout, TimeSpan.FromMilliseconds(250));
        if (!healthy)
            throw new TimeoutException($"the daemon did not become healthy in {timeout}:\n{Output}");
    }

    /// <summary>Simulates a crash: SIGKILL, nothing gets to clean up.</summary>
    public async Task KillHardAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    /// <summary>Graceful stop (SIGTERM), as systemd or Ctrl-C would do.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        Libc.Kill(_process.Id, Libc.SIGTERM);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { _process.Kill(); await _process.WaitForExitAsync(); }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Http.Dispose();
        _process.Dispose();
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

internal static partial class Libc
{
    public const int SIGTERM = 15;
    public const int SIGKILL = 9;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
