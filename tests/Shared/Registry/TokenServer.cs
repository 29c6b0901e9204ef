using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Bough.TestSupport.Registry;

/// <summary>Which fields a token answer carries: Docker's <c>token</c>, OAuth2's <c>access_token</c>, or both.</summary>
public enum TokenResponseShape { TokenAndAccessToken, AccessTokenOnly }

/// <summary>One request the token server answered, as the client sent it.</summary>
/// <param name="User">The Basic user name sent, or null when the request was anonymous.</param>
/// <param name="Authenticated">Whether the Basic credentials matched (false for anonymous and wrong ones).</param>
/// <param name="Status">The HTTP status answered.</param>
/// <param name="Service">The <c>service</c> query parameter.</param>
/// <param name="Scopes">Every requested scope (repeated <c>scope</c> parameters and space-separated lists).</param>
public sealed record TokenRequest(string? User, bool Authenticated, int Status, string? Service, IReadOnlyList<string> Scopes)
{
    public override string ToString() =>
        $"{(User is null ? "anonymous" : $"user '{User}'{(Authenticated ? "" : " (bad credentials)")}")} service={Service} scopes=[{string.Join(" ", Scopes)}] -> {Status}";
}

/// <summary>
/// A token service in the shape of Docker's (the <c>realm</c> of a <c>WWW-Authenticate: Bearer</c>
/// challenge), so the real distribution registry can run with token auth in tests. It checks Basic
/// credentials against one user, grants that user pull/push on whatever repository scope it asks for,
/// grants anonymous callers a token with no access at all (what Docker Hub does for a private
/// repository, so the registry still says 401), and answers wrong credentials with 401.
/// Tokens are RS256 JWTs whose <c>x5c</c> header carries a self-signed certificate: the registry
/// verifies that chain against <see cref="RootCertificatePem"/> (its <c>rootcertbundle</c>), then
/// the signature with the certificate's key, then <c>iss</c>, <c>aud</c>, <c>nbf</c>/<c>exp</c> and <c>access</c>.
/// Every request is recorded in <see cref="Requests"/> so tests can see what the client asked for.
/// </summary>
public sealed class TokenServer : IDisposable
{
    public const string Issuer = "bough-test-token-issuer";
    public const string DefaultService = "bough-test-registry";
    private static readonly string[] GrantableActions = ["pull", "push"];

    private readonly HttpListener _listener;
    private readonly RSA _key;
    private readonly X509Certificate2 _certificate;
    private readonly string _user;
    private readonly string _password;
    private readonly TokenResponseShape _shape;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly ConcurrentQueue<TokenRequest> _requests = new();
    private long _lifetimeTicks = TimeSpan.FromMinutes(5).Ticks;

    private TokenServer(HttpListener listener, int port, string user, string password, string service, TokenResponseShape shape)
    {
        _listener = listener;
        Port = port;
        _user = user;
        _password = password;
        Service = service;
        _shape = shape;
        _key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={Issuer}", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }
    /// <summary>The <c>service</c> the registry names in its challenges and the tokens' <c>aud</c>.</summary>
    public string Service { get; }
    /// <summary>Where the registry's challenge sends clients.</summary>
    public string Realm => $"http://127.0.0.1:{Port}/token";
    /// <summary>The certificate whose key signs every token: the registry's <c>rootcertbundle</c>.</summary>
    public string RootCertificatePem => _certificate.ExportCertificatePem();
    /// <summary>
    /// <c>exp</c> − <c>iat</c> of tokens issued from now on. The registry accepts a token for 60 s past its
    /// <c>exp</c> (clock-skew leeway), so a lifetime of −55 s gives tokens that work for about 5 s: how tests
    /// make a token expire in the middle of a pull without waiting minutes.
    /// </summary>
    public TimeSpan Lifetime
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _lifetimeTicks));
        set => Volatile.Write(ref _lifetimeTicks, value.Ticks);
    }
    /// <summary>Every request answered so far, in order.</summary>
    public IReadOnlyList<TokenRequest> Requests => _requests.ToArray();

    /// <summary>Starts listening on a free loopback port.</summary>
    public static TokenServer Start(string user, string password, string service = DefaultService,
        TokenResponseShape shape = TokenResponseShape.TokenAndAccessToken)
    {
        // Another process may take the probed port before we bind it: try a few.
        for (var attempt = 0; ; attempt++)
        {
            var port = FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return new TokenServer(listener, port, user, password, service, shape);
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Close();
            }
        }
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // stopped
            }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        try
        {
            var (status, body) = Answer(ctx.Request);
            var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
            ctx.Response.StatusCode = status;
            ctx.Response.ContentType = "application/json";
            if (status == 401) ctx.Response.AddHeader("WWW-Authenticate", "Basic realm=\"bough-test-token\"");
            ctx.Response.ContentLength64 = bytes.Length;
            ctx.Response.OutputStream.Write(bytes);
            ctx.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // The client went away; nothing to answer.
        }
    }

    private (int Status, JsonObject Body) Answer(HttpListenerRequest req)
    {
        if (req.Url?.AbsolutePath != "/token")
            return (404, new JsonObject { ["details"] = "not found" });
        var service = req.QueryString["service"];
        var scopes = (req.QueryString.GetValues("scope") ?? [])
            .SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        var (user, authenticated) = Credentials(req.Headers["Authorization"]);

        int status;
        JsonObject body;
        if (req.HttpMethod != "GET")
            (status, body) = (405, new JsonObject { ["details"] = "only GET" });
        else if (user is not null && !authenticated)
            (status, body) = (401, new JsonObject { ["details"] = "incorrect username or password" });
        else if (service != Service)
            (status, body) = (400, new JsonObject { ["details"] = $"unknown service '{service}'" });
        else
        {
            var token = Issue(authenticated ? user! : "", authenticated ? Grants(scopes) : []);
            body = _shape == TokenResponseShape.AccessTokenOnly
                ? new JsonObject { ["access_token"] = token }
                : new JsonObject { ["token"] = token, ["access_token"] = token };
            body["expires_in"] = (int)Math.Max(1, Lifetime.TotalSeconds);
            body["issued_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
            status = 200;
        }
        _requests.Enqueue(new TokenRequest(user, authenticated, status, service, scopes));
        return (status, body);
    }

    /// <summary>(user, matched) from a Basic header; (null, false) when there is none or it is not Basic.</summary>
    private (string? User, bool Authenticated) Credentials(string? header)
    {
        if (header is null || !header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return (null, false);
        string text;
        try { text = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim())); }
        catch (FormatException) { return ("", false); }
        var colon = text.IndexOf(':');
        if (colon < 0) return (text, false);
        var (user, password) = (text[..colon], text[(colon + 1)..]);
        var ok = CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(_user))
                 & CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(password), Encoding.UTF8.GetBytes(_password));
        return (user, ok);
    }

    /// <summary><c>repository:name:pull,push</c> → an access entry with the requested actions this server grants.</summary>
    private static JsonArray Grants(IEnumerable<string> scopes)
    {
        var access = new JsonArray();
        foreach (var scope in scopes)
        {
            // The name may not contain ':' in a repository scope, but split on the outer ones anyway.
            var first = scope.IndexOf(':');
            var last = scope.LastIndexOf(':');
            if (first < 0 || last == first || scope[..first] != "repository") continue;
            var actions = scope[(last + 1)..].Split(',').Where(GrantableActions.Contains).Distinct().ToArray();
            if (actions.Length == 0) continue;
            access.Add(new JsonObject
            {
                ["type"] = "repository",
                ["name"] = scope[(first + 1)..last],
                ["actions"] = new JsonArray(actions.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            });
        }
        return access;
    }

    private string Issue(string subject, JsonArray access)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject
        {
            ["typ"] = "JWT",
            ["alg"] = "RS256",
            ["x5c"] = new JsonArray(Convert.ToBase64String(_certificate.RawData)),
        };
        var claims = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Service,
            ["exp"] = now + (long)Lifetime.TotalSeconds,
            ["nbf"] = now - 10,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        };
        var signingInput = Base64Url(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(claims));
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _certificate.Dispose();
        _key.Dispose();
        _stop.Dispose();
    }
}
