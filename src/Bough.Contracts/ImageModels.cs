namespace Bough.Contracts;

// Images (pull, import, build, their progress) and templates on the wire.

/// <summary>POST /v1/images: pull (or re-pull) an OCI image by reference.</summary>
public sealed record PullImageRequest
{
    /// <summary>Reference: <c>python:3.12-slim</c>, <c>ghcr.io/org/app@sha256:...</c>, <c>localhost:5000/x:1</c>.</summary>
    public string? Ref { get; init; }
    /// <summary>Allow plain HTTP (and unverified TLS) to this registry.</summary>
    public bool? Insecure { get; init; }
    /// <summary>Root filesystem size in MiB; default: content plus headroom.</summary>
    public int? DiskSizeMiB { get; init; }
}

/// <summary>POST /v1/images/import: an OCI image layout directory or a <c>docker save</c> tar on the daemon's host.</summary>
public sealed record ImportImageRequest
{
    public string? Path { get; init; }
    /// <summary>Name to publish under; default: the reference recorded in the archive.</summary>
    public string? Name { get; init; }
    public int? DiskSizeMiB { get; init; }
}

/// <summary>POST /v1/images/build: a built-in recipe (e.g. <c>debian-python</c>).</summary>
public sealed record BuildImageRequest
{
    public string? Recipe { get; init; }
    public string? Name { get; init; }
}

/// <summary>Image states: <c>pulling</c> (or building) then <c>ready</c>; <c>failed</c> is kept briefly for pollers.</summary>
public static class ImageStates
{
    public const string Pulling = "pulling";
    public const string Ready = "ready";
    public const string Failed = "failed";
}

/// <summary>Defaults an image gives every exec in its sandboxes (from the OCI config).</summary>
public sealed record ImageConfig
{
    public List<string> Env { get; init; } = [];
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public List<string>? Entrypoint { get; init; }
    public List<string>? Cmd { get; init; }
}

public sealed record LayerStatus
{
    public required string Digest { get; init; }
    public long Size { get; init; }
    public long Done { get; init; }
    /// <summary>"waiting", "downloading", "cached", "done" or "extracting".</summary>
    public required string State { get; init; }
}

public sealed record Image
{
    /// <summary>Canonical name: the normalised reference (<c>docker.io/library/python:3.12-slim</c>) or a recipe/import name.</summary>
    public required string Name { get; init; }
    public required string State { get; init; }
    /// <summary>"registry", "archive", "recipe" or "builtin".</summary>
    public string? Source { get; init; }
    public string? Digest { get; init; }
    public long? ContentBytes { get; init; }
    public long? DiskBytes { get; init; }
    public ImageConfig? Config { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
    /// <summary>While pulling: what is happening now ("resolving", "downloading", "extracting", "building", "publishing").</summary>
    public string? Phase { get; init; }
    public List<LayerStatus>? Layers { get; init; }
    /// <summary>When failed: the error as it would have been returned.</summary>
    public ProblemSummary? Error { get; init; }
}

public sealed record ProblemSummary(string Code, string Detail);

public sealed record CreateTemplateRequest
{
    public string? Name { get; init; }
    public string? Image { get; init; }
    public int? Vcpus { get; init; }
    public int? MemoryMiB { get; init; }
    /// <summary>Started in the background (detached, output to /var/log/bough-template-start.log) after boot.</summary>
    public List<string>? Start { get; init; }
    /// <summary>Run repeatedly until it exits 0; then the sandbox is snapshotted.</summary>
    public List<string>? Ready { get; init; }
    public double? ReadyTimeoutSeconds { get; init; }
    public Dictionary<string, string>? Env { get; init; }
    public List<int>? Ports { get; init; }
    public bool? Internet { get; init; }
}

public sealed record Template
{
    public required string Name { get; init; }
    public required string Image { get; init; }
    public required string SnapshotId { get; init; }
    public int Vcpus { get; init; }
    public int MemoryMiB { get; init; }
    public List<string>? Start { get; init; }
    public List<string>? Ready { get; init; }
    public Dictionary<string, string> Env { get; init; } = [];
    public List<int> Ports { get; init; } = [];
    public bool Internet { get; init; } = true;
    /// <summary>How long boot + start + ready took when the template was made.</summary>
    public long WarmupMs { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}
