using System.Diagnostics;
using System.Text.Json;

namespace Bough.E2b.Tests;

/// <summary>
/// The unmodified E2B JS SDK, pinned in <c>sdk/package-lock.json</c> and installed with <c>npm ci</c>
/// next to the test binaries, running <c>sdk/scenarios.mjs</c> against a daemon with nothing but
/// the three environment variables an E2B user would set.
/// </summary>
public sealed class NodeSdk(Uri daemon, string apiKey)
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "sdk");

    /// <summary>Installs the pinned SDK exactly as locked; needs node and npm (<c>.ci/run</c> makes sure of both).</summary>
    public static async Task InstallAsync()
    {
        var (code, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], null, TimeSpan.FromMinutes(10));
        if (code != 0)
            throw new InvalidOperationException($"npm ci failed ({code}):\n{output}");
    }

    /// <summary>Runs one scenario and returns the JSON line it printed; a scenario that threw fails the test with its message.</summary>
    public async Task<JsonElement> RunAsync(string scenario, object? args = null, TimeSpan? limit = null)
    {
        var env = new Dictionary<string, string>
        {
            ["E2B_API_URL"] = daemon.ToString().TrimEnd('/'),
            ["E2B_SANDBOX_URL"] = daemon.ToString().TrimEnd('/'),
            ["E2B_API_KEY"] = apiKey,
        };
        var (code, output) = await RunAsync("node", ["scenarios.mjs", scenario, JsonSerializer.Serialize(args ?? new { })], env,
            limit ?? TimeSpan.FromMinutes(30));
        var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        if (code != 0 || line is null)
            throw new InvalidOperationException($"scenario {scenario} failed ({code}):\n{output}");
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args, Dictionary<string, string>? env, TimeSpan limit)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = Directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in new[] { "E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN", "E2B_DEBUG" })
            psi.Environment.Remove(key);
        foreach (var (k, v) in env ?? []) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran longer than {limit}:\n{await stdout}{await stderr}");
        }
        return (p.ExitCode, await stdout + await stderr);
    }
}
