namespace Bough.E2b;

/// <summary>The fixed names the adapter uses on both sides: reserved metadata keys, the base template, what envd version it claims.</summary>
internal static class E2bNames
{
    /// <summary>
    /// Metadata keys the adapter keeps on each E2B sandbox (Bough metadata is the one per-sandbox store
    /// that survives restarts, pause and is handed to forks). They are hidden from E2B clients.
    /// </summary>
    public const string ReservedPrefix = "e2b:";
    public const string AccessTokenKey = "e2b:envdAccessToken";
    public const string TemplateIdKey = "e2b:templateID";

    /// <summary>E2B's default template name, and the Bough template and image it resolves to.</summary>
    public const string BaseTemplateId = "base";
    public const string BaseTemplateName = "e2b-base";
    public const string BaseImageName = "e2b-base-image";

    /// <summary>The user (and home) E2B's base template runs commands as when the client names none.</summary>
    public const string BaseUser = "user";

    /// <summary>
    /// The envd version announced: at least 0.5.7 so the SDK uses octet-stream uploads when asked and
    /// closeStdin, and at least 0.4.0 so it does not force the user "user" on every call. Not 0.6.2 or
    /// later: from there the SDK (2.51) sends file metadata (<c>X-Metadata-*</c> upload headers) that the
    /// adapter does not store, so it would be dropped silently; below it the SDK refuses with a clear
    /// error. That also keeps <c>watchDir({includeEntry})</c> (0.6.3) closed, though WatchDir serves it.
    /// </summary>
    public const string EnvdVersion = "0.6.0";

    public const string ClientId = "bough";

    /// <summary>E2B's default lifetime when create names no timeout.</summary>
    public const int DefaultTimeoutSeconds = 300;

    public const string SandboxIdHeader = "E2b-Sandbox-Id";
    public const string AccessTokenHeader = "X-Access-Token";
}
