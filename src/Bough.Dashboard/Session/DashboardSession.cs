namespace Bough.Dashboard.Session;

/// <summary>
/// One browser tab's sign-in, scoped to its circuit. The token lives in the browser (localStorage) and
/// in this object, never in a cookie: a page on another site cannot make this circuit act, and a request
/// forged from another site carries no token.
/// </summary>
public sealed class DashboardSession(IDashboardTokenCheck check)
{
    /// <summary>The token this circuit signed in with; null until then.</summary>
    public string? Token { get; private set; }

    /// <summary>True once a valid token was presented on this circuit.</summary>
    public bool IsSignedIn => Token is not null && check.IsValid(Token);

    /// <summary>Raised when the session signs in or out, so the gate re-renders.</summary>
    public event Action? Changed;

    /// <summary>Signs in when <paramref name="token"/> is the API token; false (and signed out) otherwise.</summary>
    public bool TrySignIn(string? token)
    {
        token = token?.Trim();
        Token = !string.IsNullOrEmpty(token) && check.IsValid(token) ? token : null;
        Changed?.Invoke();
        return Token is not null;
    }

    /// <summary>Forgets the token (the browser forgets its copy too: see dashboard.js).</summary>
    public void SignOut()
    {
        Token = null;
        Changed?.Invoke();
    }
}
