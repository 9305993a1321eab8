package main

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// web is the app's page: index.html, app.js, style.css.
//
//go:embed web
var web embed.FS

// customerID stands for the logged-in user a real backend knows; pushgate
// hands it back in the relay's events (and Incode in its webhooks) as
// externalId.
const customerID = "customer-42"

// backend is the integrator's server. Its routes are those of Incode's
// sample backends (/onboarding-url, /fetch-score, /webhook); where the
// samples call Incode, it calls pushgate's server API.
type backend struct {
	gateway  string       // pushgate's base URL, e.g. http://127.0.0.1:8080
	apiToken string       // pushgate's -api-token: the backend's alone, never the page's
	relayKey []byte       // the key of pushgate's -relay-secret
	csp      string       // the page's Content-Security-Policy
	client   *http.Client // calls pushgate; run closes its idle connections
	store    store
	log      *log.Logger
}

func newBackend(o options, logger *log.Logger) (*backend, error) {
	gw, err := url.Parse(strings.TrimSuffix(o.gateway, "/"))
	if err != nil || (gw.Scheme != "http" && gw.Scheme != "https") || gw.Host == "" {
		return nil, fmt.Errorf("-gateway %q: want start, or pushgate's URL (https://push.example)", o.gateway)
	}
	if o.apiToken == "" {
		return nil, errors.New("PUSHGATE_API_TOKEN: set it to pushgate's -api-token")
	}
	secret, ok := strings.CutPrefix(o.relaySecret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(secret)
	if !ok || err != nil {
		return nil, errors.New("PUSHGATE_RELAY_SECRET: set it to pushgate's -relay-secret (whsec_ and the base64 of the key)")
	}
	if o.flowOrigin == "" {
		return nil, errors.New("-flow-origin: name the origin of the onboarding pages (pushgate's -flow-origin)")
	}
	origin := gw.Scheme + "://" + gw.Host
	return &backend{
		gateway:  gw.String(),
		apiToken: o.apiToken,
		relayKey: key,
		// The page loads client.js from pushgate and talks to it (script-src,
		// connect-src), and frames the onboarding flow (frame-src).
		csp: fmt.Sprintf("default-src 'self'; script-src 'self' %[1]s; connect-src 'self' %[1]s; frame-src %[2]s; "+
			"style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", origin, strings.ReplaceAll(o.flowOrigin, ",", " ")),
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 15 * time.Second},
		log:    logger,
	}, nil
}

func (b *backend) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", b.page())
	mux.HandleFunc("POST /onboarding-url", b.onboardingURL)
	mux.HandleFunc("GET /fetch-score", b.fetchScore)
	mux.HandleFunc("POST /webhook", b.webhook)
	mux.HandleFunc("GET /results/{interviewId}", b.result)
	return mux
}

// page serves web/, index.html as a template that names pushgate's URL,
// with the page's security headers.
func (b *backend) page() http.Handler {
	files, _ := fs.Sub(web, "web")
	index := template.Must(template.ParseFS(files, "index.html"))
	static := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", b.csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path != "/" {
			static.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := index.Execute(w, map[string]string{"Gateway": b.gateway}); err != nil {
			b.log.Printf("page: %v", err)
		}
	})
}

// onboardingURL starts a session (steps 1-2 of the guide). Where Incode's
// samples call /omni/start and /0/omni/onboarding-url, the backend calls
// POST /v1/sessions, and hands the page {interviewId, token, url}.
func (b *backend) onboardingURL(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Language string `json:"language,omitempty"` // one of pushgate's -languages
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&in); err != nil {
		b.fail(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	start := struct {
		ExternalCustomerID string `json:"externalCustomerId"`
		Language           string `json:"language,omitempty"`
	}{customerID, in.Language}
	var s struct {
		InterviewID string `json:"interviewId"`
		URL         string `json:"url"`
		Token       string `json:"token"` // the browser token: this interview's status and verdict, nothing else
	}
	if err := b.call(r.Context(), http.MethodPost, "/v1/sessions", start, &s); err != nil {
		b.fail(w, http.StatusBadGateway, err)
		return
	}
	b.store.started(s.InterviewID, customerID, in.Language)
	b.log.Printf("started interview %s (%s) for %s", s.InterviewID, in.Language, customerID)
	writeJSON(w, http.StatusOK, s)
}

// fetchScore is the page saying the flow is over (steps 5-6): the backend
// reads the full score from pushgate, keeps it, and answers the verdict
// alone, as the guide's /fetch-score does.
func (b *backend) fetchScore(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("interviewId")
	if b.store.owner(id) != customerID { // the logged-in user's own interview only
		b.fail(w, http.StatusNotFound, fmt.Errorf("interview %q was not started here for %s", id, customerID))
		return
	}
	var s struct {
		Finished bool            `json:"finished"`
		Score    json.RawMessage `json:"score"` // Incode's whole score, once finished
	}
	if err := b.call(r.Context(), http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &s); err != nil {
		b.fail(w, http.StatusBadGateway, err)
		return
	}
	if !s.Finished {
		b.fail(w, http.StatusConflict, fmt.Errorf("interview %s is not finished", id))
		return
	}
	var score struct {
		Overall struct {
			Status string `json:"status"` // OK, WARN or FAIL
		} `json:"overall"`
	}
	json.Unmarshal(s.Score, &score) // no score (null) leaves the verdict empty
	verdict := cmp.Or(score.Overall.Status, "UNKNOWN")
	b.store.scored(id, verdict, s.Score)
	b.log.Printf("interview %s finished: verdict %s; the backend keeps the full score (GET /results/%s)", id, verdict, id)
	writeJSON(w, http.StatusOK, map[string]string{"status": verdict})
}

// result shows what the backend holds on one interview: the full score
// and the relayed events. It is an operator's view (and the test's): a
// real app keeps it behind its staff's login, never open to its users.
func (b *backend) result(w http.ResponseWriter, r *http.Request) {
	rec, ok := b.store.get(r.PathValue("interviewId"))
	if !ok {
		b.fail(w, http.StatusNotFound, errors.New("unknown interview"))
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// call calls pushgate's server API with the API token, and decodes its
// 2xx answer into out.
func (b *backend) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.gateway+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.apiToken)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("pushgate: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("pushgate: %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// fail logs err and answers it as {"error": "..."}.
func (b *backend) fail(w http.ResponseWriter, code int, err error) {
	b.log.Printf("%d: %v", code, err)
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
