package public

import "embed"

// Files holds the page (index.html, app.js, style.css) and the browser
// client (client.js, an ES module, and its types, client.d.ts) at the root
// of the FS, ready for http.FileServer(http.FS(Files)).
//
//go:embed index.html app.js style.css client.js client.d.ts
var Files embed.FS
