// Sandbox page's browser-side helpers: the terminal (xterm.js over the attach WebSocket), uploads, downloads.
