using System.Buffers.Text;
using System.Security.Cryptography;

namespace Bough.Server.Security;

/// <summary>
/// The daemon's API token on disk: <c>&lt;data dir&gt;/api-token</c>, one line, owner-only
/// (0600). The file is the single source of truth: the daemon re-reads it when it changes, so
/// replacing it (<see cref="Rotate"/>, <c>bough token --rotate</c>) takes effect on the next
/// request without a restart, and whoever can read it is the API's owner.
/// </summary>
public static class ApiTokenFile
{
    /// <summary>File name inside the data directory (the client libraries look for the same name).</summary>
    public const string FileName = "api-token";

    /// <summary>
    /// Shortest token the daemon accepts from the file. Generated tokens are 43 characters
    /// (32 random bytes); an operator who writes their own must not make it guessable.
    /// </summary>
    public const int MinimumLength = 16;

    /// <summary>Owner read/write only.</summary>
    public const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const int RandomBytes = 32;

    public static string PathIn(string dataDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        return Path.Combine(dataDir, FileName);
    }

    /// <summary>A new token: 32 bytes from the OS CSPRNG, base64url without padding (safe in headers, URLs, shells).</summary>
    public static string Generate() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(RandomBytes));

    /// <summary>
    /// Writes a fresh token to <paramref name="path"/> unless a valid one is already there
    /// (first start). A file that exists but holds no usable token is an operator error and is
    /// reported, not silently replaced: replacing it would lock out every client holding it.
    /// </summary>
    /// <returns>The token in the file.</returns>
    /// <exception cref="InvalidDataException">The file exists but its token is empty or too short.</exception>
    public static string EnsureExists(string path)
    {
        if (TryRead(path) is { } existing)
        {
            Tighten(path);
            return Validate(existing, path);
        }
        var token = Generate();
        WriteAtomic(path, token);
        return token;
    }

    /// <summary>Replaces the token with a new one (the old one stops working at once) and returns it.</summary>
    public static string Rotate(string path)
    {
        var token = Generate();
        WriteAtomic(path, token);
        return token;
    }

    /// <summary>The token in the file (surrounding whitespace removed), or null when there is no file.</summary>
    /// <exception cref="UnauthorizedAccessException">The file exists but is not readable by this user.</exception>
    public static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Returns <paramref name="token"/> if it is usable, else throws saying what is wrong with <paramref name="path"/>.</summary>
    internal static string Validate(string token, string path)
    {
        if (token.Length < MinimumLength || token.Any(char.IsWhiteSpace))
            throw new InvalidDataException(
                $"{path} does not hold a usable API token (one line, at least {MinimumLength} characters, no spaces); " +
                "replace it with `bough token --rotate` (clients then need the new token)");
        return token;
    }

    /// <summary>
    /// Writes through a temporary file created 0600 and renamed over the target, so a reader
    /// (the daemon, a client) sees the old token or the new one, never a partial or
    /// world-readable file.
    /// </summary>
    private static void WriteAtomic(string path, string token)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var tmp = Path.Combine(dir, $".{FileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = Mode;
            using (var stream = new FileStream(tmp, options))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(token);
                writer.Write('\n');
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            try { File.Delete(tmp); }
            catch (IOException) { }
        }
    }

    /// <summary>An existing file from an older install or a hand edit may be readable by others: make it 0600.</summary>
    private static void Tighten(string path)
    {
        if (!OperatingSystem.IsWindows() && File.GetUnixFileMode(path) != Mode)
            File.SetUnixFileMode(path, Mode);
    }
}
