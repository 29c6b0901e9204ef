using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Bough.HostSetup;

namespace Bough.Images.Kernel;

/// <summary>Where a .deb lives and what it must hash to, as apt itself reports it.</summary>
public sealed record DebPackage(string Name, string Url, string FileName, long Size, string HashAlgorithm, string Hash);

/// <summary>
/// Asks the host's apt (not a hard-coded mirror) where packages are, so the configured mirror,
/// proxy and security archive are honoured and the hash comes from signed package lists.
/// </summary>
public sealed partial class DebianArchive(HostSystem? system = null)
{
    private readonly HostSystem _system = system ?? HostSystem.Current;

    /// <summary>The real package a meta package points at (e.g. linux-image-cloud-amd64 -> linux-image-6.1.0-NN-cloud-amd64).</summary>
    public async Task<string> ResolveDependencyAsync(string metaPackage, string prefix, CancellationToken ct)
    {
        var found = await TryResolveAsync(metaPackage, prefix, ct);
        if (found is null && await UpdateListsIfAllowedAsync(ct))
            found = await TryResolveAsync(metaPackage, prefix, ct);
        return found ?? throw new SetupException(
            $"apt does not know '{metaPackage}' (package lists missing or stale). Run:\n  sudo apt-get update\nthen retry.");
    }

    private static async Task<string?> TryResolveAsync(string meta, string prefix, CancellationToken ct)
    {
        var r = await CommandRunner.RunAsync("apt-cache", ["depends", meta], new CommandOptions { Timeout = TimeSpan.FromMinutes(1) }, ct);
        if (!r.Succeeded) return null;
        foreach (var line in r.Stdout.Split('\n'))
        {
            var t = line.Trim().TrimStart('|');
            if (!t.StartsWith("Depends:", StringComparison.Ordinal)) continue;
            var name = t["Depends:".Length..].Trim();
            if (name.StartsWith(prefix, StringComparison.Ordinal) && !name.StartsWith('<')) return name;
        }
        return null;
    }

    /// <summary>URL, size and hash of <paramref name="package"/> from <c>apt-get --print-uris download</c>.</summary>
    public static async Task<DebPackage> LocateAsync(string package, CancellationToken ct)
    {
        var r = await CommandRunner.RunCheckedAsync("apt-get", ["--print-uris", "-qq", "download", package],
            new CommandOptions { Timeout = TimeSpan.FromMinutes(1) }, ct);
        var m = UriLine().Match(r.Stdout);
        if (!m.Success)
            throw new SetupException($"could not parse 'apt-get --print-uris download {package}' output: {r.Stdout.Trim()}");
        return new DebPackage(package, m.Groups["url"].Value, m.Groups["file"].Value, long.Parse(m.Groups["size"].Value),
            m.Groups["alg"].Value, m.Groups["hash"].Value.ToLowerInvariant());
    }

    /// <summary>
    /// Downloads <paramref name="deb"/> to <paramref name="destination"/>, reporting bytes, and checks
    /// size and hash while streaming. A mismatch deletes the file and throws.
    /// </summary>
    public static async Task DownloadAsync(DebPackage deb, string destination, IProgress<SetupProgress>? p, CancellationToken ct)
    {
        using var hash = deb.HashAlgorithm.ToUpperInvariant() switch
        {
            "SHA256" => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
            "SHA512" => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
            "SHA1" => IncrementalHash.CreateHash(HashAlgorithmName.SHA1),
            "MD5SUM" or "MD5" => IncrementalHash.CreateHash(HashAlgorithmName.MD5),
            var other => throw new SetupException($"apt reported an unknown hash algorithm '{other}' for {deb.Name}"),
        };
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("bough-setup/0.1");
        long done = 0;
        try
        {
            using var response = await http.GetAsync(deb.Url, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
                throw new SetupException($"downloading {deb.Url} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            await using var file = new FileStream(destination, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            var buffer = new byte[1 << 16];
            long lastReport = -1;
            p?.Report(new SetupProgress("download", $"downloading {deb.FileName}", 0, deb.Size));
            int n;
            while ((n = await body.ReadAsync(buffer, ct)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                await file.WriteAsync(buffer.AsMemory(0, n), ct);
                done += n;
                if (done > deb.Size)
                    throw new SetupException($"{deb.Url} is larger than the {deb.Size} bytes apt expects");
                if (done - lastReport >= 1 << 20 || done == deb.Size)
                {
                    lastReport = done;
                    p?.Report(new SetupProgress("download", $"downloading {deb.FileName}", done, deb.Size));
                }
            }
        }
        catch (HttpRequestException e)
        {
            File.Delete(destination);
            throw new SetupException($"downloading {deb.Url} failed: {e.Message}", e);
        }
        catch
        {
            File.Delete(destination);
            throw;
        }

        var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (done != deb.Size || actual != deb.Hash)
        {
            File.Delete(destination);
            throw new SetupException(
                $"{deb.FileName} is corrupt: got {done} bytes with {deb.HashAlgorithm} {actual}, apt expects {deb.Size} bytes with {deb.Hash}");
        }
    }

    /// <summary>Root may refresh stale lists itself; anyone else gets told to.</summary>
    private async Task<bool> UpdateListsIfAllowedAsync(CancellationToken ct)
    {
        if (!_system.IsRoot()) return false;
        // The host's package lists are read by every user (and apt's own sandbox user), not only by the daemon (077).
        await CommandRunner.RunCheckedAsync("apt-get", ["update", "-qq"],
            new CommandOptions { Environment = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" }, Umask = ProcessUmask.Shared }, ct);
        return true;
    }

    [GeneratedRegex(@"^'(?<url>[^']+)'\s+(?<file>\S+)\s+(?<size>\d+)\s+(?<alg>[A-Za-z0-9]+):(?<hash>[0-9a-fA-F]+)", RegexOptions.Multiline)]
    private static partial Regex UriLine();
}
