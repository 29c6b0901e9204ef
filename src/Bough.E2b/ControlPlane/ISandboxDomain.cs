using Microsoft.AspNetCore.Http;

namespace Bough.E2b.ControlPlane;

/// <summary>
/// Where sandbox ports are reachable as <c>&lt;port&gt;-&lt;sandbox id&gt;.&lt;domain&gt;</c>: E2B's <c>domain</c>
/// field, on which the SDK's <c>sandbox.getHost(port)</c> builds. The server that routes those names registers
/// it; without one the field is left out and the SDK falls back to its own E2B_DOMAIN.
/// </summary>
public interface ISandboxDomain
{
    /// <summary>The domain (a DNS name, maybe with <c>:port</c>) to announce to the caller of <paramref name="context"/>; null for none.</summary>
    string? DomainFor(HttpContext context);
}

/// <summary>Reads the optional <see cref="ISandboxDomain"/> for a control-plane answer.</summary>
internal static class SandboxDomains
{
    public static string? Of(HttpContext context) =>
        (context.RequestServices.GetService(typeof(ISandboxDomain)) as ISandboxDomain)?.DomainFor(context);
}
