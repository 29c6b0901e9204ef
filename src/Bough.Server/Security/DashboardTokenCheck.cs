using Bough.Dashboard.Session;

namespace Bough.Server.Security;

/// <summary>The dashboard signs in with the API token: the same verifier as every API request.</summary>
internal sealed class DashboardTokenCheck(ApiTokenVerifier verifier) : IDashboardTokenCheck
{
    public bool IsValid(string token) => verifier.Verify(token);
}
