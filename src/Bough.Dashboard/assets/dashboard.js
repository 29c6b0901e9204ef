// The dashboard's few browser-side pieces. The API token is kept in this browser's localStorage (never a
// cookie, so no request another site forges carries it) and handed to the server over the circuit.
window.boughDashboard = (() => {
  const key = "bough.token";

  // A ?token= in the address is taken once and removed from the address bar and the history entry at once,
  // so it is not left in the history, bookmarks or a shared screen.
  function takeToken() {
    const url = new URL(window.location.href);
    const fromUrl = url.searchParams.get("token");
    if (fromUrl !== null) {
      url.searchParams.delete("token");
      history.replaceState(history.state, "", url.pathname + url.search + url.hash);
      if (fromUrl) localStorage.setItem(key, fromUrl);
    }
    return localStorage.getItem(key);
  }

  function token() { return localStorage.getItem(key); }
  function keepToken(token) { localStorage.setItem(key, token); }
  function forgetToken() { localStorage.removeItem(key); }

  // REST calls the page makes itself (uploads, downloads), with the token as a bearer header.
  async function api(path, init) {
    const headers = new Headers((init && init.headers) || {});
    headers.set("Authorization", "Bearer " + token());
    const response = await fetch(path, { ...init, headers });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try { const p = await response.json(); detail = p.detail || p.title || detail; } catch { /* not a problem document */ }
      throw new Error(detail);
    }
    return response;
  }

  return { takeToken, token, keepToken, forgetToken, api };
})();
