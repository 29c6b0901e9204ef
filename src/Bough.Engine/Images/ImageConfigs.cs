using System.Text.Json;
using Bough.Contracts;
using Bough.Images.Oci;

namespace Bough.Engine.Images;

/// <summary>Conversions between the OCI config, the wire <see cref="ImageConfig"/> and its catalog JSON.</summary>
internal static class ImageConfigs
{
    public static ImageConfig FromOci(OciImageConfig c) => new()
    {
        Env = c.Env.ToList(),
        WorkingDir = string.IsNullOrEmpty(c.WorkingDir) ? null : c.WorkingDir,
        User = string.IsNullOrEmpty(c.User) ? null : c.User,
        Entrypoint = c.Entrypoint?.ToList(),
        Cmd = c.Cmd?.ToList(),
    };

    public static string ToJson(ImageConfig c) => JsonSerializer.Serialize(c, BoughJson.Options);

    public static ImageConfig FromJson(string json)
    {
        try { return JsonSerializer.Deserialize<ImageConfig>(json, BoughJson.Options) ?? new ImageConfig(); }
        catch (JsonException) { return new ImageConfig(); }
    }

    /// <summary>The image's <c>KEY=VALUE</c> list as a map (later entries win, as in Docker).</summary>
    public static Dictionary<string, string> EnvMap(ImageConfig c)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in c.Env)
        {
            var i = kv.IndexOf('=');
            if (i <= 0) continue;
            map[kv[..i]] = kv[(i + 1)..];
        }
        return map;
    }
}

/// <summary>What a boot needs from an image: its canonical name, read-only disk and exec defaults.</summary>
internal sealed record BootImage(string Name, string DiskPath, ImageConfig Config);
