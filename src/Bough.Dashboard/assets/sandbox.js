// Sandbox page's browser-side helpers: the terminal (xterm.js over the attach WebSocket), uploads, downloads.
// Bytes go between this browser and the REST API directly, with the token the dashboard keeps in localStorage.
window.boughSandbox = (() => {
  // What `bough shell` runs: bash as a login shell where the image has it, else sh.
  const shell = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi";
  const sandboxPath = (id) => "/v1/sandboxes/" + encodeURIComponent(id);
  const filePath = (id, path) => sandboxPath(id) + "/files?path=" + encodeURIComponent(path);

  function scrollToEnd(element) {
    if (element) element.scrollTop = element.scrollHeight;
  }

  // Saves a guest file: fetched with the token (a plain link could not carry it), then handed to the browser's
  // download through an object URL on an <a download>.
  async function download(sandboxId, path, name) {
    const response = await boughDashboard.api(filePath(sandboxId, path));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.style.display = "none";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  // Uploads the files chosen in an <input type=file> into a guest directory (PUT .../files?path=, the body is
  // the file's bytes, streamed by the browser); clears the input after. Returns how many were uploaded.
  async function upload(input, sandboxId, dir) {
    const files = Array.from(input.files || []);
    try {
      for (const file of files) {
        const target = (dir === "/" ? "" : dir) + "/" + file.name;
        await boughDashboard.api(filePath(sandboxId, target), {
          method: "PUT",
          headers: { "Content-Type": "application/octet-stream" },
          body: file,
        });
      }
    } finally {
      input.value = "";
    }
    return files.length;
  }

  // Starts a login shell on a guest terminal as `bough shell` does (POST .../processes with a pty), attaches
  // xterm.js to it over the attach WebSocket (token as the subprotocol bough.token.<token>: a browser cannot set
  // headers on a WebSocket), and returns an object whose dispose() hangs the shell up and frees the terminal.
  // `owner` (a .NET object reference) hears TerminalEnded(message) when the shell exits or the connection ends.
  async function openTerminal(element, sandboxId, owner) {
    const term = new Terminal({ cursorBlink: true, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace', fontSize: 13 });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(element);
    fit.fit();

    let process;
    try {
      const response = await boughDashboard.api(sandboxPath(sandboxId) + "/processes", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          cmd: ["/bin/sh", "-c", shell],
          env: { TERM: "xterm-256color" },
          pty: { cols: term.cols, rows: term.rows },
        }),
      });
      process = await response.json();
    } catch (e) {
      term.dispose();
      throw e;
    }
    const processPath = sandboxPath(sandboxId) + "/processes/" + process.pid;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + processPath + "/attach",
      ["bough.v1", "bough.token." + boughDashboard.token()]);
    socket.binaryType = "arraybuffer";

    let exited = false;
    let disposed = false;
    const encoder = new TextEncoder();
    const ended = (message) => {
      if (!disposed && owner) owner.invokeMethodAsync("TerminalEnded", message).catch(() => { /* circuit gone */ });
    };
    const decode = (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

    socket.onmessage = (m) => {
      if (m.data instanceof ArrayBuffer) { term.write(new Uint8Array(m.data)); return; }
      const e = JSON.parse(m.data);
      if (e.type === "stderr" && e.data) term.write(decode(e.data));
      else if (e.type === "exit") {
        exited = true;
        const how = e.signal ? "killed by signal " + e.signal : "exit code " + e.exitCode;
        term.write("\r\n[the shell ended: " + how + "]\r\n");
        ended("The shell ended (" + how + ").");
      } else if (e.type === "error") {
        term.write("\r\n[" + (e.message || "the terminal failed") + "]\r\n");
        ended("The terminal failed: " + (e.message || e.code) + ".");
      }
    };
    socket.onclose = () => { if (!exited) ended("The terminal's connection closed."); };

    // Keys typed before the socket is open wait for it, so nothing typed right away is lost.
    const pending = [];
    const send = (data) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(data);
      else if (socket.readyState === WebSocket.CONNECTING) pending.push(data);
    };
    const typed = term.onData((d) => send(encoder.encode(d)));
    const binary = term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));
    const resized = term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })));
    const opened = new Promise((resolve, reject) => {
      socket.onopen = () => {
        // The element may have changed size between the start and the attach.
        fit.fit();
        socket.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
        for (const data of pending.splice(0)) socket.send(data);
        term.focus();
        resolve();
      };
      socket.onerror = () => reject(new Error("the terminal's WebSocket could not connect"));
    });
    const observer = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
    observer.observe(element);

    // A shell whose client is gone would wait for input forever: hang it up, as closing a terminal does.
    const hangUp = (keepalive) => {
      if (exited) return;
      exited = true;
      boughDashboard.api(processPath + "/signal", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ signal: "HUP" }),
        keepalive,
      }).catch(() => { /* already gone */ });
    };
    const onPageHide = () => hangUp(true);
    window.addEventListener("pagehide", onPageHide);

    const handle = {
      dispose() {
        if (disposed) return;
        disposed = true;
        window.removeEventListener("pagehide", onPageHide);
        hangUp(false);
        observer.disconnect();
        typed.dispose(); binary.dispose(); resized.dispose();
        socket.close();
        term.dispose();
      },
    };
    try {
      await opened;
    } catch (e) {
      handle.dispose();
      throw e;
    }
    return handle;
  }

  return { scrollToEnd, download, upload, openTerminal };
})();
