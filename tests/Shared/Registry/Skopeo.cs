using System.Diagnostics;

namespace Bough.TestSupport.Registry;

/// <summary>Pushes OCI layouts to a registry with the real skopeo (the registry stores what a real client sent).</summary>
public static class Skopeo
{
    /// <param name="destRef">host:port/repo:tag</param>
    public static async Task PushAsync(string layoutDir, string tag, string destRef, (string User, string Password)? creds = null,
        CancellationToken ct = default)
    {
        var psi = new ProcessStartInfo("skopeo")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            ArgumentList = { "--insecure-policy", "copy", "--all", "--quiet", "--dest-tls-verify=false" },
        };
        if (creds is { } c)
        {
            psi.ArgumentList.Add("--dest-creds");
            psi.ArgumentList.Add($"{c.User}:{c.Password}");
        }
        psi.ArgumentList.Add($"oci:{layoutDir}:{tag}");
        psi.ArgumentList.Add($"docker://{destRef}");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        try
        {
            await p.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"skopeo copy to {destRef} failed ({p.ExitCode}): {await stderr}{await stdout}");
    }
}
