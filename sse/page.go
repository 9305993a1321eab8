package sse

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// index serves the page's index.html, a template that gets the iframe's
// allow attribute (iframeAllow), so the page asks for exactly the features
// the Permissions-Policy header grants the flow, for the same origins.
type index struct {
	body []byte // rendered once: nothing in it changes per request
}

func newIndex(page fs.FS, allow string) (*index, error) {
	src, err := fs.ReadFile(page, "index.html")
	if err != nil {
		return nil, err
	}
	tpl, err := template.New("index.html").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, struct{ IframeAllow string }{allow}); err != nil {
		return nil, err
	}
	return &index{body: out.Bytes()}, nil
}

// iframeAllow is the iframe's allow attribute: each feature for the flow
// origins, or for any origin (*). A single origin is not named: the
// feature then goes to the attribute's default, the origin of the
// iframe's src, which the CSP holds to that origin. Several are named, so
// a flow that moves from one to another inside the iframe keeps the
// features.
func iframeAllow(flowOrigins, features []string) string {
	var to string
	switch {
	case framesAny(flowOrigins):
		to = " " + anyOrigin
	case len(flowOrigins) > 1:
		to = " " + strings.Join(flowOrigins, " ")
	}
	parts := make([]string, len(features))
	for i, f := range features {
		parts[i] = f + to
	}
	return strings.Join(parts, "; ")
}

func (ix *index) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(ix.body)
}
