// Tree page's browser-side helpers (pan/zoom, keyboard), if any.
