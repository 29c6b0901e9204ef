using System.Globalization;
using System.Text;
using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// health and configure. configure exists because a restored snapshot is a copy of its parent:
/// same RNG state, stale clock, same hostname. Everything is validated before anything is applied,
/// so a bad request changes nothing.
/// </summary>
internal static class SystemOperations
{
    private static readonly DateTimeOffset MinClock = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset MaxClock = new(2200, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public const int MaxEntropyBytes = 4096;

    public static EndMessage Health(AgentState state) => new()
    {
        Health = new HealthDto
        {
            AgentVersion = AgentState.Version,
            ProtocolVersion = ProtocolConstants.Version,
            AgentUptimeMs = state.UptimeMs,
            SystemUptimeMs = SystemUptimeMs(),
            BootId = AgentState.BootId(),
            Hostname = AgentState.Hostname(),
        },
    };

    private static long SystemUptimeMs()
    {
        var text = AgentState.ReadTrimmed("/proc/uptime");
        if (text == null) return 0;
        var first = text.Split(' ')[0];
        return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? (long)(s * 1000) : 0;
    }

    public static EndMessage Configure(ConfigureRequest? request, AgentState state)
    {
        if (request == null) throw new AgentError(ErrorCodes.BadRequest, "configure arguments missing");
        Validate(request, state);
        if (request.UnixTimeMs is { } ms) SetClock(GuestClock.Choose(ms, GuestClock.ReadRtcSeconds()));
        if (request.Entropy is { } entropy) AddEntropy(entropy);
        if (request.Hostname is { } hostname) SetHostname(hostname, state.HostnameFile);
        if (request.Env is { } env) state.MergeDefaultEnv(env);
        if (request.Cwd is { } cwd) state.SetDefaultCwd(cwd);
        if (request.User is { } user) state.SetDefaultUser(user);
        return new EndMessage();
    }

    /// <summary>
    /// Cwd must be absolute (existence is checked per exec: a command may create it later). User must
    /// resolve now, so a typo in an image's User fails the configure instead of every later exec.
    /// An empty string for either restores the built-in default (/root, root), as an empty OCI field means.
    /// </summary>
    public static void Validate(ConfigureRequest request, AgentState state)
    {
        if (request.Cwd is { Length: > 0 } cwd) AgentError.RequireAbsolute(cwd, "cwd");
        if (request.User is { Length: > 0 } user) state.Users.Resolve(user);
        if (request.Hostname is { } h && !IsValidHostname(h))
            throw new AgentError(ErrorCodes.BadRequest, $"invalid hostname '{h}': 1-64 characters of [A-Za-z0-9-.], not starting or ending with '-' or '.'");
        if (request.UnixTimeMs is { } ms && (ms < MinClock.ToUnixTimeMilliseconds() || ms > MaxClock.ToUnixTimeMilliseconds()))
            throw new AgentError(ErrorCodes.BadRequest, $"unixTimeMs {ms} is outside 2000..2200");
        if (request.Entropy is { } e && (e.Length == 0 || e.Length > MaxEntropyBytes))
            throw new AgentError(ErrorCodes.BadRequest, $"entropy must be 1..{MaxEntropyBytes} bytes");
        if (request.Env is { } env) CommandLine.ValidateEnv(env);
    }

    private static bool IsValidHostname(string h) =>
        h.Length is >= 1 and <= 64
        && h.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.')
        && h[0] is not ('-' or '.') && h[^1] is not ('-' or '.');

    private static unsafe void SetClock(long unixMs)
    {
        var ts = new Libc.Timespec { Sec = unixMs / 1000, Nsec = unixMs % 1000 * 1_000_000 };
        if (Libc.clock_settime(0 /* CLOCK_REALTIME */, &ts) != 0)
            throw AgentError.FromErrno(Libc.Errno, "clock_settime", "CLOCK_REALTIME");
    }

    /// <summary>RNDADDENTROPY both mixes the bytes in and credits them, unlike a plain write to /dev/random.</summary>
    private static unsafe void AddEntropy(byte[] entropy)
    {
        int fd = Libc.open("/dev/random", Libc.O_WRONLY | Libc.O_CLOEXEC, 0);
        if (fd < 0) throw AgentError.FromErrno(Libc.Errno, "open", "/dev/random");
        try
        {
            var info = new byte[8 + entropy.Length];
            BitConverter.TryWriteBytes(info.AsSpan(0, 4), entropy.Length * 8); // entropy_count in bits
            BitConverter.TryWriteBytes(info.AsSpan(4, 4), entropy.Length);     // buf_size in bytes
            entropy.CopyTo(info, 8);
            fixed (byte* p = info)
            {
                if (Libc.ioctl(fd, Libc.RNDADDENTROPY, p) != 0)
                    throw AgentError.FromErrno(Libc.Errno, "RNDADDENTROPY", "/dev/random");
            }
            // Credited entropy reseeds the kernel's generator only while it is still initialising; once it is ready, the
            // next reseed waits for its interval (seconds to a minute). Restored siblings would hand out the same random
            // bytes until then (seen: equal /proc/sys/kernel/random/uuid in two sandboxes of one boot snapshot).
            if (Libc.ioctl(fd, Libc.RNDRESEEDCRNG, null) != 0)
                throw AgentError.FromErrno(Libc.Errno, "RNDRESEEDCRNG", "/dev/random");
        }
        finally
        {
            Libc.close(fd);
        }
    }

    private static unsafe void SetHostname(string hostname, string hostnameFile)
    {
        var bytes = Encoding.ASCII.GetBytes(hostname);
        fixed (byte* p = bytes)
        {
            if (Libc.sethostname(p, bytes.Length) != 0)
                throw AgentError.FromErrno(Libc.Errno, "sethostname", hostname);
        }
        try
        {
            File.WriteAllText(hostnameFile, hostname + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentError(ErrorCodes.IoError, $"write {hostnameFile}: {e.Message}");
        }
    }
}
