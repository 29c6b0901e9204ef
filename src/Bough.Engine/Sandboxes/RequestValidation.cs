using Bough.Contracts;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// Semantic checks of API input. Each failure names the field and the allowed range, because
/// a 400 that does not say what to change is only half an answer.
/// </summary>
internal static class RequestValidation
{
    public const int MaxMetadataEntries = 64;
    public const int MaxKeyLength = 256;
    public const int MaxValueLength = 8192;
    public const int MaxArgs = 4096;
    public const int MaxPathLength = 4096;
    public static readonly TimeSpan MaxExecTimeout = TimeSpan.FromDays(1);

    public sealed record CreateSpec(string Image, int Vcpus, int MemoryMiB, IReadOnlyDictionary<string, string> Env,
        IReadOnlyDictionary<string, string> Metadata, bool Internet, IReadOnlyList<int> Ports, Lifetime Lifetime,
        Catalog.EgressRules? Network);

    public static CreateSpec ValidateCreate(CreateSandboxRequest r, EngineOptions o)
    {
        var image = r.Image ?? "base";
        if (string.IsNullOrWhiteSpace(image))
            throw BoughException.Invalid("image must not be empty");

        var vcpus = r.Vcpus ?? o.DefaultVcpus;
        if (vcpus < 1 || vcpus > o.MaxVcpus)
            throw BoughException.Invalid($"vcpus must be between 1 and {o.MaxVcpus} (got {vcpus})");

        var mem = r.MemoryMiB ?? o.DefaultMemoryMiB;
        if (mem < o.MinMemoryMiB || mem > o.MaxMemoryMiB)
            throw BoughException.Invalid($"memoryMiB must be between {o.MinMemoryMiB} and {o.MaxMemoryMiB} (got {mem})");

        var env = ValidateEnv(r.Env, "env");
        var meta = ValidateMap(r.Metadata, "metadata");

        var ports = r.Ports ?? [];
        if (ports.Count > o.MaxPortsPerSandbox)
            throw BoughException.Invalid($"at most {o.MaxPortsPerSandbox} ports may be exposed (got {ports.Count})");
        foreach (var p in ports)
            if (p is < 1 or > 65535)
                throw BoughException.Invalid($"ports: {p} is not a TCP port (1-65535)");
        if (ports.Distinct().Count() != ports.Count)
            throw BoughException.Invalid("ports: each guest port may be listed once");

        var lifetime = Lifetime.Resolve(r.TimeoutSeconds, r.OnTimeout, o);
        var network = EgressValidation.Validate(r.Network);
        return new CreateSpec(image, vcpus, mem, env, meta, r.Internet ?? true, ports, lifetime, network);
    }

    public static IReadOnlyDictionary<string, string> ValidateEnv(IReadOnlyDictionary<string, string>? env, string field)
    {
        var map = ValidateMap(env, field);
        foreach (var k in map.Keys)
            if (k.Contains('=') || k.Length == 0)
                throw BoughException.Invalid($"{field}: '{k}' is not a valid environment variable name");
        return map;
    }

    public static IReadOnlyDictionary<string, string> ValidateMap(IReadOnlyDictionary<string, string>? map, string field)
    {
        if (map is null) return new Dictionary<string, string>();
        if (map.Count > MaxMetadataEntries)
            throw BoughException.Invalid($"{field}: at most {MaxMetadataEntries} entries (got {map.Count})");
        foreach (var (k, v) in map)
        {
            if (string.IsNullOrEmpty(k) || k.Length > MaxKeyLength || k.Contains('\0'))
                throw BoughException.Invalid($"{field}: keys must be 1-{MaxKeyLength} characters without NUL");
            if (v is null || v.Length > MaxValueLength || v.Contains('\0'))
                throw BoughException.Invalid($"{field}.{k}: values must be at most {MaxValueLength} characters without NUL");
        }
        return new Dictionary<string, string>(map);
    }

    public static void ValidateExec(ExecCommand c)
    {
        if (c.Argv is null || c.Argv.Count == 0)
            throw BoughException.Invalid("cmd must be a non-empty array of strings");
        if (c.Argv.Count > MaxArgs)
            throw BoughException.Invalid($"cmd: at most {MaxArgs} arguments");
        if (c.Argv[0].Length == 0)
            throw BoughException.Invalid("cmd[0] must not be empty");
        for (var i = 0; i < c.Argv.Count; i++)
            if (c.Argv[i] is null || c.Argv[i].Contains('\0'))
                throw BoughException.Invalid($"cmd[{i}] must be a string without NUL");
        ValidateEnv(c.Env, "env");
        if (c.Cwd is not null) ValidateGuestPath(c.Cwd, "cwd");
        if (c.User is not null && (c.User.Length is 0 or > MaxKeyLength || c.User.Contains('\0')))
            throw BoughException.Invalid($"user must be 1-{MaxKeyLength} characters without NUL (a name, uid, name:group or uid:gid)");
        if (c.Timeout is { } t && (t <= TimeSpan.Zero || t > MaxExecTimeout))
            throw BoughException.Invalid($"timeoutSeconds must be > 0 and at most {MaxExecTimeout.TotalSeconds}");
    }

    /// <summary>An argv list (start/ready commands): non-empty strings without NUL.</summary>
    public static List<string>? ValidateArgv(List<string>? argv, string field)
    {
        if (argv is null) return null;
        if (argv.Count == 0) throw BoughException.Invalid($"{field} must be a non-empty array of strings (argv) or left out");
        if (argv.Count > MaxArgs) throw BoughException.Invalid($"{field}: at most {MaxArgs} arguments");
        for (var i = 0; i < argv.Count; i++)
            if (argv[i] is null || argv[i].Contains('\0') || (i == 0 && argv[i].Length == 0))
                throw BoughException.Invalid($"{field}[{i}] must be a non-empty string without NUL");
        return argv;
    }

    /// <summary>Checks a guest path and returns its normal form (<see cref="GuestPaths"/>), which is what every later check and the agent see.</summary>
    public static string NormalizeGuestPath(string? path, string field = "path")
    {
        ValidateGuestPath(path, field);
        return GuestPaths.Normalize(path!);
    }

    public static void ValidateGuestPath(string? path, string field = "path")
    {
        if (string.IsNullOrEmpty(path))
            throw new BoughException(ErrorCodes.InvalidPath, $"{field} is required and must be an absolute guest path");
        if (path[0] != '/')
            throw new BoughException(ErrorCodes.InvalidPath, $"{field} must be an absolute guest path (got '{path}')");
        if (path.Length > MaxPathLength || path.Contains('\0'))
            throw new BoughException(ErrorCodes.InvalidPath, $"{field} must be at most {MaxPathLength} characters without NUL");
    }
}
