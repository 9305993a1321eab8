package sse

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// index serves the page's index.html, a template that gets the iframe's
// allow attribute, so the page asks for exactly the features the
// Permissions-Policy header grants the flow.
type index struct {
	body []byte // rendered once: nothing in it changes per request
}

func newIndex(page fs.FS, features []string) (*index, error) {
	src, err := fs.ReadFile(page, "index.html")
	if err != nil {
		return nil, err
	}
	tpl, err := template.New("index.html").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, struct{ IframeAllow string }{strings.Join(features, "; ")}); err != nil {
		return nil, err
	}
	return &index{body: out.Bytes()}, nil
}

func (ix *index) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(ix.body)
}
