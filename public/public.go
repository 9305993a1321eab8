package public

import "embed"

// Files holds index.html, app.js and style.css at the root of the FS, ready
// for http.FileServer(http.FS(Files)).
//
//go:embed index.html app.js style.css
var Files embed.FS
