package simulator

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
)

// The flow page stands in for the upstream's onboarding flow in an iframe.
// Its script posts each step to the control API, so the statuses it sets are
// the ones the gateway then reads through the upstream API.

//go:embed web
var webFS embed.FS

var flowTemplate = template.Must(template.New("flow.html").Funcs(template.FuncMap{"json": toJSON}).ParseFS(webFS, "web/flow.html"))

// toJSON encodes v for a template; the template escapes it for its place.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// flowCSP keeps every script and style in files served from this origin. It
// sets no frame-ancestors: the page must open in another origin's iframe.
const flowCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'none'"

// stepItem is one entry of the step list the page shows.
type stepItem struct {
	N       int
	Label   string
	Current bool
	Done    bool
}

type flowData struct {
	InterviewID string
	Status      string
	Step        int // 1..4, or 5 when done
	Steps       []stepItem
	StepDelayMS int64
	Auto        bool
	Order       [][]string // the statuses each step sets, in order
}

var stepLabels = []string{"Capture ID", "Confirm details", "Selfie", "Finish"}

// stepOf maps a status to the page step that follows the step that set
// it, in the given order. Statuses the page does not set start at step 1;
// a manual review comes after the last step.
func stepOf(status string, steps [][]string) int {
	if status == "MANUAL_REVIEW_APPROVED" || status == "MANUAL_REVIEW_REJECTED" {
		return len(steps) + 1
	}
	for i, step := range steps {
		if slices.Contains(step, status) {
			return i + 2
		}
	}
	return 1
}

func (s *Simulator) flowPage(w http.ResponseWriter, r *http.Request) {
	iv, ok := s.lookup(r.PathValue("id"))
	if !ok || iv.deleted {
		s.renderPage(w, http.StatusNotFound, "notfound", nil)
		return
	}
	order := orderSteps[s.order]
	step := stepOf(iv.status, order)
	d := flowData{
		Order:       order,
		InterviewID: iv.id,
		Status:      iv.status,
		Step:        step,
		StepDelayMS: s.stepDelay.Milliseconds(),
		Auto:        r.URL.Query().Get("auto") == "1",
	}
	for i, l := range stepLabels {
		d.Steps = append(d.Steps, stepItem{N: i + 1, Label: l, Current: i+1 == step, Done: i+1 < step})
	}
	s.renderPage(w, http.StatusOK, "flow", d)
}

func (s *Simulator) renderPage(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.page.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("simulator: flow page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", flowCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// staticHandler serves web/static under /flow/static/, files only.
func staticHandler() http.Handler {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.StripPrefix("/flow/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}
