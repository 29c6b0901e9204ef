using System.Security.Cryptography;
using Bough.AgentClient;
using Bough.Contracts;
using Bough.Engine.Images;

namespace Bough.Engine.Guest;

/// <summary>
/// Makes a guest this sandbox and not a clone of another: hostname = sandbox id, wall clock =
/// now, fresh host entropy, and the exec defaults (the image's Env under the sandbox's env,
/// its WorkingDir and User). Applied after every boot, restore and resume, before any user command,
/// in one configure request that the agent carries out in-process (no guest command is spawned).
/// </summary>
internal sealed class GuestIdentity(TimeProvider time)
{
    public Task ApplyAsync(IGuestAgent agent, string sandboxId, ImageConfig image,
        IReadOnlyDictionary<string, string> env, CancellationToken ct)
    {
        var merged = ImageConfigs.EnvMap(image);
        foreach (var (k, v) in env) merged[k] = v;
        return agent.ConfigureAsync(new GuestConfig
        {
            Hostname = sandboxId,
            UnixTimeMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
            Entropy = RandomNumberGenerator.GetBytes(64),
            Env = merged.Count > 0 ? merged : null,
            Cwd = image.WorkingDir,
            User = image.User,
        }, ct);
    }

    /// <summary>
    /// What every sandbox of <paramref name="image"/> has in common and nothing more: the clock, entropy and the
    /// image's exec defaults, but no hostname and no sandbox env. For a boot snapshot's VM before its capture: it
    /// runs the agent's configure path once, so the sandboxes restored from it do not compile it again.
    /// </summary>
    public Task PrimeAsync(IGuestAgent agent, ImageConfig image, CancellationToken ct)
    {
        var env = ImageConfigs.EnvMap(image);
        return agent.ConfigureAsync(new GuestConfig
        {
            UnixTimeMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
            Entropy = RandomNumberGenerator.GetBytes(64),
            Env = env.Count > 0 ? env : null,
            Cwd = image.WorkingDir,
            User = image.User,
        }, ct);
    }
}
