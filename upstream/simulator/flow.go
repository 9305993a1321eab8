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
// Its onboarding URL, /flow/{id}?key=<flow key>, is its only credential:
// the page shows only with the interview's key, and its script posts each
// step to the flow routes (/flow/{id}/status, /flow/{id}/score) with the
// key in X-Flow-Key. The statuses it sets are the ones the gateway then
// reads through the upstream API.

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
	Key         string // the flow key, for the script's steps
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
	if status == StatusManualReviewApproved || status == StatusManualReviewRejected {
		return len(steps) + 1
	}
	for i, step := range steps {
		if slices.Contains(step, status) {
			return i + 2
		}
	}
	return 1
}

// flowRoutes registers the flow page, its static files and the steps its
// script posts.
func (s *Simulator) flowRoutes(m *http.ServeMux) {
	staticRoutes(m)
	handle(m, "/flow/{id}", map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.flowPage)})
	handle(m, "/flow/{id}/status", map[string]http.Handler{http.MethodPost: s.flowStep(s.flowStatus)})
	handle(m, "/flow/{id}/score", map[string]http.Handler{http.MethodPost: s.flowStep(s.flowScore)})
}

// flowPage shows the flow page of the interview, given its key in ?key=.
func (s *Simulator) flowPage(w http.ResponseWriter, r *http.Request) {
	iv, code := s.flowInterview(r.PathValue("id"), r.URL.Query().Get("key"))
	switch code {
	case http.StatusNotFound:
		s.renderPage(w, code, "message", pageMessage{"Session not found", "This onboarding session does not exist."})
		return
	case http.StatusForbidden:
		s.renderPage(w, code, "message", pageMessage{"Link not valid", "This onboarding link is incomplete or belongs to another session."})
		return
	case http.StatusGone:
		s.renderPage(w, code, "message", pageMessage{"Session expired", "This onboarding session expired before it was finished."})
		return
	}
	order := orderSteps[s.order]
	step := stepOf(iv.status, order)
	d := flowData{
		Order:       order,
		InterviewID: iv.id,
		Key:         iv.flowKey,
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

// flowStatus sets a status the flow page sets: one of its order's, never
// UNKNOWN or a status only the control API sets.
func (s *Simulator) flowStatus(w http.ResponseWriter, r *http.Request, iv interview) {
	var body statusBody
	if !decodeChange(w, r, &body) {
		return
	}
	if settable := Path(s.order)[1:]; !slices.Contains(settable, body.Status) {
		writeError(w, r, http.StatusBadRequest, "the flow page sets only "+strings.Join(settable, ", "))
		return
	}
	err := s.update(iv.id, func(iv *interview) error {
		if iv.status == StatusExpired { // the flow timed out since the step began
			return ErrFlowExpired
		}
		s.setStatusLocked(iv, body.Status)
		return nil
	})
	if err == nil {
		s.log.Info("simulator: status set by the flow page", "interview", iv.id, "status", body.Status)
	}
	s.answerChange(w, r, err)
}

// flowScore sets the outcome the flow page's last step chose.
func (s *Simulator) flowScore(w http.ResponseWriter, r *http.Request, iv interview) {
	var body scoreBody
	if decodeChange(w, r, &body) {
		s.answerChange(w, r, s.SetScore(iv.id, body.Outcome))
	}
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

// staticRoutes serves each file of web/static at /flow/static/<name>, and
// nothing else there: no listings, no other paths. Files one by one keep
// /flow/static/ from overlapping /flow/{id}/status and /flow/{id}/score.
func staticRoutes(m *http.ServeMux) {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files, err := fs.ReadDir(sub, ".")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		if !f.IsDir() {
			handle(m, "/flow/static/"+f.Name(), map[string]http.Handler{http.MethodGet: staticFile(sub, f.Name())})
		}
	}
}

// staticFile serves one embedded file, revalidated on every use.
func staticFile(fsys fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeFileFS(w, r, fsys, name)
	})
}

// pageMessage is what the flow page's "message" template says instead of
// a flow: a title, and a sentence.
type pageMessage struct{ Title, Text string }
