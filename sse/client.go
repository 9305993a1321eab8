package sse

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
)

// The page's client.js is an ES module. The Handler also serves it as a
// classic script, built from that one source when the Handler is made, so
// there is one implementation of the browser side.

var (
	exportPattern = regexp.MustCompile(`(?m)^export (?:async function|function|class|const) ([A-Za-z_$][A-Za-z0-9_$]*)`)
	importPattern = regexp.MustCompile(`(?m)^\s*(import\b|export\s*\{|export default)|import\.meta`)
	exportKeyword = regexp.MustCompile(`(?m)^export `)
)

// classicScript turns an ES module without imports into a classic script:
// the same code in a function scope, in strict mode, with its exports as
// the frozen object window.<global>.
func classicScript(module []byte, global string) ([]byte, error) {
	if importPattern.Match(module) {
		return nil, errors.New("sse: client.js must not import, use import.meta or export lists: it is also served as a classic script")
	}
	var names []string
	for _, m := range exportPattern.FindAllSubmatch(module, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) == 0 {
		return nil, errors.New("sse: client.js exports nothing")
	}
	var out bytes.Buffer
	out.WriteString("// pushgate's browser client as a classic script: client.js, with its exports on window." + global + ".\n")
	out.WriteString("(function () {\n'use strict';\n")
	out.Write(exportKeyword.ReplaceAll(module, nil))
	out.WriteString("\nwindow." + global + " = Object.freeze({ " + strings.Join(names, ", ") + " });\n})();\n")
	return out.Bytes(), nil
}

// asset serves fixed content with its type.
type asset struct {
	body        []byte
	contentType string
}

func (a asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.body)
}

// clientAssets are the routes of the browser client: client.js and its
// classic build, with a JavaScript type whatever the host's MIME table
// says, and client.d.ts with a type browsers show as text. None when the
// page has no client.js.
func clientAssets(page fs.FS) (map[string]http.Handler, error) {
	module, err := fs.ReadFile(page, "client.js")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	classic, err := classicScript(module, "pushgate")
	if err != nil {
		return nil, err
	}
	routes := map[string]http.Handler{
		"/client.js":         asset{module, "text/javascript; charset=utf-8"},
		"/client.classic.js": asset{classic, "text/javascript; charset=utf-8"},
	}
	if types, err := fs.ReadFile(page, "client.d.ts"); err == nil {
		routes["/client.d.ts"] = asset{types, "text/plain; charset=utf-8"}
	}
	return routes, nil
}
