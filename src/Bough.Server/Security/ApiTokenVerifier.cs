using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Security;

/// <summary>
/// Checks a presented token against the one in <see cref="ApiTokenFile"/>. The file is looked
/// at (one <c>stat</c>) on every check and re-read when its time stamp or size changed, so a
/// rotation takes effect on the very next request. Comparison is on SHA-256 digests with
/// <see cref="CryptographicOperations.FixedTimeEquals"/>: constant time, and the token's
/// length does not leak either.
/// </summary>
internal sealed class ApiTokenVerifier
{
    private readonly string _path;
    private readonly ILogger<ApiTokenVerifier> _log;
    private readonly Lock _reload = new();
    private volatile Expected _expected;

    /// <summary>What the file held when last read; <see cref="Digest"/> is null while it holds no usable token (fail closed).</summary>
    private sealed record Expected(DateTime WriteTimeUtc, long Length, byte[]? Digest);

    /// <exception cref="InvalidDataException">The file exists but holds no usable token (the daemon must not start).</exception>
    public ApiTokenVerifier(string path, ILogger<ApiTokenVerifier> log)
    {
        _path = path;
        _log = log;
        ApiTokenFile.EnsureExists(path);
        _expected = Load() ?? throw new InvalidDataException($"{path} vanished while the daemon was starting");
    }

    /// <summary>True when <paramref name="presented"/> is the current token.</summary>
    public bool Verify(string presented)
    {
        var expected = Current();
        if (expected.Digest is null || string.IsNullOrEmpty(presented))
            return false;
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), digest);
        return CryptographicOperations.FixedTimeEquals(digest, expected.Digest);
    }

    private Expected Current()
    {
        var known = _expected;
        var info = new FileInfo(_path);
        if (info.Exists && info.LastWriteTimeUtc == known.WriteTimeUtc && info.Length == known.Length)
            return known;

        lock (_reload)
        {
            if (!info.Exists)
            {
                // Removed by hand: recreate it as on first start; clients holding the old token
                // need the new one, exactly as after a rotation.
                _log.LogWarning("{Path} was removed; writing a new API token", _path);
                ApiTokenFile.EnsureExists(_path);
            }
            var fresh = Load() ?? new Expected(default, -1, null);
            if (fresh.Digest is not null && known.Digest is not null && !fresh.Digest.AsSpan().SequenceEqual(known.Digest))
                _log.LogInformation("API token changed on disk ({Path}); the previous token no longer works", _path);
            _expected = fresh;
            return fresh;
        }
    }

    /// <summary>Reads the file; null when it does not exist.</summary>
    private Expected? Load()
    {
        var info = new FileInfo(_path);
        string? token;
        try
        {
            token = ApiTokenFile.TryRead(_path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.LogError(ex, "cannot read the API token at {Path}; refusing every request until it is readable", _path);
            return new Expected(info.Exists ? info.LastWriteTimeUtc : default, info.Exists ? info.Length : -1, null);
        }
        if (token is null)
            return null;
        try
        {
            ApiTokenFile.Validate(token, _path);
        }
        catch (InvalidDataException ex)
        {
            _log.LogError("{Message}; refusing every request until it does", ex.Message);
            return new Expected(info.LastWriteTimeUtc, info.Length, null);
        }
        return new Expected(info.LastWriteTimeUtc, info.Length, SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }
}
