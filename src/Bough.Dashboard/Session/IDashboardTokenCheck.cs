namespace Bough.Dashboard.Session;

/// <summary>
/// Whether a token is the daemon's API token. The dashboard signs a browser in with the same token as
/// the REST API; the server registers the check (it owns the token file), so this library never reads it.
/// </summary>
public interface IDashboardTokenCheck
{
    /// <summary>True when <paramref name="token"/> is the current API token.</summary>
    bool IsValid(string token);
}
