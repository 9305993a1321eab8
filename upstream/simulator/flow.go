package simulator

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The flow page stands in for the upstream's onboarding flow in an iframe.
// Its script posts each step to the control API, so the statuses it sets are
// the ones the gateway then reads through the upstream API.

//go:embed web
var webFS embed.FS

var flowTemplate = template.Must(template.ParseFS(webFS, "web/flow.html"))

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
}

var stepLabels = []string{"Capture ID", "Confirm details", "Selfie", "Finish"}

// stepOf maps a status to the page step that follows it. Statuses the page
// does not know start at step 1.
func stepOf(status string) int {
	switch status {
	case StatusIDValidationFinished, "ID_VALIDATION_FINISHED_SECOND_ID":
		return 2
	case StatusPostProcessingFinished:
		return 3
	case StatusFaceValidationFinished, "GOVERNMENT_VALIDATION_FINISHED":
		return 4
	case StatusOnboardingFinished, "MANUAL_REVIEW_APPROVED", "MANUAL_REVIEW_REJECTED":
		return 5
	default:
		return 1
	}
}

func (s *Simulator) flowPage(w http.ResponseWriter, r *http.Request) {
	iv, ok := s.lookup(r.PathValue("id"))
	if !ok {
		s.renderPage(w, http.StatusNotFound, "notfound", nil)
		return
	}
	step := stepOf(iv.status)
	d := flowData{
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
