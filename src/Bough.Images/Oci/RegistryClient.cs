using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;

namespace Bough.Images.Oci;

/// <summary>
/// The HTTP side of one pull: talks to one repository on one registry. Decides the scheme once (HTTPS;
/// with <c>insecure</c> also plain HTTP when HTTPS fails), answers auth challenges (Bearer tokens are
/// cached per scope for the life of this client and fetched again when the registry refuses a cached
/// one, Basic credentials are sent once a registry asks), and turns every failure into an
/// <see cref="ImageException"/> with a stable code and the URL. Where credentials may go is
/// <see cref="CredentialPolicy"/>'s decision; documents are read up to <see cref="ImageLimits.MaxDocumentBytes"/>.
/// </summary>
internal sealed class RegistryClient(HttpClient http, ImageReference reference, bool insecure, RegistryOptions options) : IDisposable
{
    private const int MaxErrorBodyBytes = 64 * 1024;

    private readonly CredentialPolicy _policy = new(reference, insecure, RegistryCredentials.Find(options.CredentialsFile, reference.Registry));
    private readonly Dictionary<string, string> _tokens = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _authGate = new(1, 1);
    private AuthenticationHeaderValue? _authorization;
    private string? _baseUrl;
    private bool _credentialsSent;

    private RegistryCredential? Credential => _policy.Credential;
    private int MaxDocumentBytes => options.Limits.MaxDocumentBytes;

    private string Repo => reference.Repository;
    private string Display => $"{reference.Registry}/{reference.Repository}";

    /// <summary>Fetches a manifest or index by tag or digest: (bytes, media type, Docker-Content-Digest header).</summary>
    public async Task<(byte[] Body, string? ContentType, string? DigestHeader)> GetManifestAsync(string tagOrDigest, CancellationToken ct)
    {
        var what = $"{Display}:{tagOrDigest}".Replace(":sha256:", "@sha256:", StringComparison.Ordinal);
        using var resp = await SendAsync($"/v2/{Repo}/manifests/{tagOrDigest}", MediaTypes.ManifestAccept, what, ct);
        await EnsureSuccessAsync(resp, what, notFound: $"{what}: not found in registry", ct);
        var body = await ReadCappedAsync(resp, what, ct);
        var digestHeader = resp.Headers.TryGetValues("Docker-Content-Digest", out var v) ? v.FirstOrDefault() : null;
        return (body, resp.Content.Headers.ContentType?.MediaType, digestHeader);
    }

    /// <summary>Starts a blob download (redirects followed); the caller streams and disposes the response.</summary>
    public async Task<HttpResponseMessage> GetBlobAsync(string digest, CancellationToken ct)
    {
        var what = $"blob {digest} of {Display}";
        var resp = await SendAsync($"/v2/{Repo}/blobs/{digest}", null, what, ct);
        try
        {
            await EnsureSuccessAsync(resp, what, notFound: null, ct);
            return resp;
        }
        catch
        {
            resp.Dispose();
            throw;
        }
    }

    /// <summary>A URL for messages (the scheme decided, or https if none yet).</summary>
    public string UrlFor(string path) => (_baseUrl ?? $"https://{reference.ApiHost}") + path;

    private async Task<HttpResponseMessage> SendAsync(string path, string[]? accept, string what, CancellationToken ct)
    {
        var resp = await SendOnceAsync(path, accept, ct);
        if (resp.StatusCode != HttpStatusCode.Unauthorized) return resp;

        var sentBefore = _authorization;
        using (resp)
        {
            await _authGate.WaitAsync(ct);
            try
            {
                // Another download may have authenticated while we waited.
                if (ReferenceEquals(_authorization, sentBefore))
                    await AuthenticateAsync(resp, what, ct);
            }
            finally
            {
                _authGate.Release();
            }
        }
        return await SendOnceAsync(path, accept, ct); // a second 401 is mapped by EnsureSuccessAsync
    }

    private async Task<HttpResponseMessage> SendOnceAsync(string path, string[]? accept, CancellationToken ct)
    {
        if (_baseUrl is not null) return await SendToAsync(_baseUrl + path, accept, ct);

        var https = $"https://{reference.ApiHost}";
        try
        {
            var r = await SendToAsync(https + path, accept, ct);
            _baseUrl = https;
            return r;
        }
        catch (ImageException e) when (insecure && e.Code == "registry_unavailable")
        {
            // Insecure registries commonly speak plain HTTP: Docker falls back the same way.
            var plain = $"http://{reference.ApiHost}";
            var r = await SendToAsync(plain + path, accept, ct);
            _baseUrl = plain;
            return r;
        }
    }

    private async Task<HttpResponseMessage> SendToAsync(string url, string[]? accept, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, url);
        if (accept is not null)
            foreach (var a in accept) req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(a));
        req.Headers.Authorization = _authorization;
        return await SendRawAsync(req, ct);
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage req, CancellationToken ct)
    {
        var url = req.RequestUri!.ToString();
        try
        {
            return await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException e)
        {
            throw new ImageException("registry_unavailable", $"{url}: no answer within {options.RequestTimeout.TotalSeconds:0} s", e);
        }
        catch (HttpRequestException e)
        {
            throw Unavailable(url, e);
        }
    }

    private ImageException Unavailable(string url, HttpRequestException e)
    {
        var tls = e.InnerException is AuthenticationException || e.HttpRequestError == HttpRequestError.SecureConnectionError;
        var why = e.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => "the host name could not be resolved",
            HttpRequestError.ConnectionError => "the connection failed (refused or unreachable)",
            HttpRequestError.SecureConnectionError => "the TLS handshake failed",
            _ => e.Message,
        };
        var detail = e.InnerException?.Message is { Length: > 0 } inner && !why.Contains(inner, StringComparison.Ordinal) ? $" ({inner})" : "";
        var hint = !insecure && url.StartsWith("https:", StringComparison.Ordinal)
            ? tls
                ? "; if the registry serves plain HTTP or a self-signed certificate, pull with insecure: true"
                : "; if the registry serves plain HTTP, pull with insecure: true"
            : "";
        return new ImageException("registry_unavailable", $"registry {reference.Registry} unavailable at {url}: {why}{detail}{hint}", e);
    }

    private async Task AuthenticateAsync(HttpResponseMessage resp, string what, CancellationToken ct)
    {
        var challenges = resp.Headers.WwwAuthenticate.Select(h => AuthChallenge.Parse(h.Scheme, h.Parameter)).ToList();
        var bearer = challenges.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase));
        var basic = challenges.FirstOrDefault(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase));
        if (bearer is not null)
        {
            var realm = bearer["realm"];
            if (string.IsNullOrEmpty(realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri))
                throw new ImageException("registry_unavailable", $"{UrlFor("")}: Bearer challenge without a valid realm ('{realm}')");
            var scope = bearer["scope"] ?? $"repository:{Repo}:pull";
            var withCredentials = _policy.SendCredentialsToRealm(realmUri, options.CredentialsFile ?? "registries.json");
            // A cached token the registry now refuses has expired (Docker Hub's last 300 s; a pull of large
            // layers outlives one) or was revoked: fetch a new one. SendAsync retries only once, so a fresh
            // token that is refused too ends the pull as unauthorized instead of looping.
            if (!_tokens.TryGetValue(scope, out var token) || _authorization?.Parameter == token)
            {
                token = await FetchTokenAsync(realmUri, bearer["service"], scope, what, withCredentials, ct);
                _tokens[scope] = token;
            }
            _authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        else if (basic is not null)
        {
            if (Credential is null || !_policy.MaySendToRegistry(new Uri(UrlFor("/"))))
                throw Unauthorized(what, HttpStatusCode.Unauthorized, null);
            var header = BasicHeader(Credential);
            _credentialsSent = true;
            if (_authorization?.Parameter == header.Parameter)
                throw Unauthorized(what, HttpStatusCode.Unauthorized, null);
            _authorization = header;
        }
        else
        {
            var offered = challenges.Count == 0 ? "none" : string.Join(", ", challenges.Select(c => c.Scheme));
            throw Unauthorized(what, HttpStatusCode.Unauthorized, $"unsupported authentication scheme (offered: {offered})");
        }
    }

    private async Task<string> FetchTokenAsync(Uri realm, string? service, string scope, string what, bool withCredentials, CancellationToken ct)
    {
        var query = new StringBuilder();
        if (!string.IsNullOrEmpty(service)) query.Append("service=").Append(Uri.EscapeDataString(service)).Append('&');
        query.Append("scope=").Append(Uri.EscapeDataString(scope));
        var url = new UriBuilder(realm) { Query = (realm.Query.TrimStart('?') is { Length: > 0 } q ? q + "&" : "") + query }.Uri;
        using var req = new HttpRequestMessage(HttpMethod.Get, url);
        if (withCredentials && Credential is not null)
        {
            req.Headers.Authorization = BasicHeader(Credential);
            _credentialsSent = true;
        }
        using var resp = await SendRawAsync(req, ct);
        if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw Unauthorized(what, resp.StatusCode, $"the token service {realm.GetLeftPart(UriPartial.Path)} refused");
        if (!resp.IsSuccessStatusCode)
            throw new ImageException("registry_unavailable", $"token service {url} answered HTTP {(int)resp.StatusCode}");
        var body = await ReadCappedAsync(resp, $"token from {realm}", ct);
        try
        {
            using var doc = JsonDocument.Parse(body);
            foreach (var name in new[] { "token", "access_token" })
                if (doc.RootElement.TryGetProperty(name, out var t) && t.ValueKind == JsonValueKind.String && t.GetString() is { Length: > 0 } s)
                    return s;
        }
        catch (JsonException) { }
        throw new ImageException("registry_unavailable", $"token service {url} answered without a token");
    }

    private static AuthenticationHeaderValue BasicHeader(RegistryCredential c) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}")));

    private ImageException Unauthorized(string what, HttpStatusCode status, string? why)
    {
        var file = options.CredentialsFile;
        var creds = Credential is not null
            ? _credentialsSent
                ? $"credentials for {Credential} from {file} were sent"
                : insecure
                    ? $"credentials for {Credential} from {file} were not sent: they are never sent on an insecure pull (plain HTTP or unverified TLS); " +
                      "serve the registry over HTTPS with a certificate this host trusts"
                    : $"credentials for {Credential} from {file} were not sent (the registry did not ask for them over HTTPS)"
            : file is null
                ? "no credentials were sent (no credentials file is configured)"
                : File.Exists(file)
                    ? $"no credentials were sent ({file} has no entry for {reference.Registry})"
                    : $"no credentials were sent (credentials file {file} does not exist)";
        return new ImageException("registry_unauthorized",
            $"registry {reference.Registry} refused access to {what} (HTTP {(int)status}{(why is null ? "" : ": " + why)}); {creds}");
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage resp, string what, string? notFound, CancellationToken ct)
    {
        if (resp.IsSuccessStatusCode) return;
        var url = resp.RequestMessage?.RequestUri?.ToString() ?? UrlFor("");
        var codes = await ErrorCodesAsync(resp, ct);
        switch (resp.StatusCode)
        {
            case HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden:
                throw Unauthorized(what, resp.StatusCode, codes.Count > 0 ? string.Join(", ", codes) : null);
            case HttpStatusCode.NotFound:
                if (notFound is not null)
                    throw new ImageException("image_ref_not_found", notFound);
                throw new ImageException("image_corrupt", $"{what}: the manifest names it but the registry does not have it ({url}: 404)");
            case HttpStatusCode.TooManyRequests:
                throw new ImageException("registry_unavailable", $"{url}: the registry is rate-limiting us (HTTP 429); try again later");
        }
        if (codes.Contains("MANIFEST_UNKNOWN") || codes.Contains("NAME_UNKNOWN"))
            throw new ImageException("image_ref_not_found", notFound ?? $"{what}: not found in registry");
        throw new ImageException("registry_unavailable",
            $"{url}: HTTP {(int)resp.StatusCode}{(codes.Count > 0 ? " (" + string.Join(", ", codes) + ")" : "")}");
    }

    /// <summary>The <c>errors[].code</c> values of a Distribution API error body, if it is one.</summary>
    private static async Task<IReadOnlyList<string>> ErrorCodesAsync(HttpResponseMessage resp, CancellationToken ct)
    {
        try
        {
            if (resp.Content.Headers.ContentLength is > MaxErrorBodyBytes) return [];
            await using var s = await resp.Content.ReadAsStreamAsync(ct);
            var body = new byte[MaxErrorBodyBytes + 1];
            var n = await s.ReadAtLeastAsync(body, body.Length, throwOnEndOfStream: false, ct);
            if (n is 0 or > MaxErrorBodyBytes) return []; // an error body this large is not the API's: do not hold it
            using var doc = JsonDocument.Parse(body.AsMemory(0, n));
            if (!doc.RootElement.TryGetProperty("errors", out var errors) || errors.ValueKind != JsonValueKind.Array) return [];
            return errors.EnumerateArray()
                .Select(e => e.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : null)
                .OfType<string>().ToList();
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException)
        {
            return [];
        }
    }

    private async Task<byte[]> ReadCappedAsync(HttpResponseMessage resp, string what, CancellationToken ct)
    {
        if (resp.Content.Headers.ContentLength > MaxDocumentBytes)
            throw new ImageException("image_unsupported", $"{what}: document of {resp.Content.Headers.ContentLength} bytes is larger than {MaxDocumentBytes} (image limit MaxDocumentBytes)");
        try
        {
            await using var s = await resp.Content.ReadAsStreamAsync(ct);
            using var ms = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = await s.ReadAsync(buffer, ct)) > 0)
            {
                if (ms.Length + n > MaxDocumentBytes)
                    throw new ImageException("image_unsupported", $"{what}: document larger than {MaxDocumentBytes} bytes (image limit MaxDocumentBytes)");
                ms.Write(buffer, 0, n);
            }
            return ms.ToArray();
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new ImageException("registry_unavailable", $"{what}: the connection broke while reading ({e.Message})", e);
        }
    }

    /// <summary>Releases the auth gate; the HTTP client is shared and outlives this pull.</summary>
    public void Dispose() => _authGate.Dispose();
}
