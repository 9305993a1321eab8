package simulator

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// sampleRequest is one upstream request an Incode sample backend makes,
// as testdata/samples.json records it.
type sampleRequest struct {
	Name   string `json:"name"`
	Source struct {
		Repo   string `json:"repo"`
		Commit string `json:"commit"`
		Path   string `json:"path"`
		Line   int    `json:"line"`
	} `json:"source"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Reads   []string          `json:"reads"` // dotted paths into the answer
	// SimulatorAnswers is the status the simulator answers a request it
	// does not serve as the sample expects (not_replayed only).
	SimulatorAnswers int    `json:"simulator_answers"`
	Reason           string `json:"reason"`
}

func loadSamples(t *testing.T) (samples, notReplayed []sampleRequest) {
	t.Helper()
	b, err := os.ReadFile("testdata/samples.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Samples     []sampleRequest `json:"samples"`
		NotReplayed []sampleRequest `json:"not_replayed"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	commit := regexp.MustCompile(`^[0-9a-f]{40}$`)
	for _, s := range append(append([]sampleRequest{}, doc.Samples...), doc.NotReplayed...) {
		src := s.Source
		if !strings.HasPrefix(src.Repo, "Incode-Technologies-Example-Repos/") || !commit.MatchString(src.Commit) || src.Path == "" || src.Line <= 0 {
			t.Errorf("%s: source %+v lacks its repository, commit, path or line", s.Name, src)
		}
	}
	if len(doc.Samples) == 0 {
		t.Fatal("no samples")
	}
	return doc.Samples, doc.NotReplayed
}

// send replays one sample request against the simulator over HTTP, with
// the samples' variables replaced by vars.
func (h *harness) send(s sampleRequest, vars *strings.Replacer) answer {
	h.t.Helper()
	target := vars.Replace(s.Path)
	if s.Query != "" {
		target += "?" + vars.Replace(s.Query)
	}
	body := ""
	if len(s.Body) > 0 && string(s.Body) != "null" {
		body = vars.Replace(string(s.Body))
	}
	var hdr []string
	for k, v := range s.Headers {
		hdr = append(hdr, k, vars.Replace(v))
	}
	return h.do(s.Method, target, body, hdr...)
}

// lookupPath returns the value at a dotted path of a JSON answer, and
// whether it is there and not null.
func lookupPath(v any, path string) (any, bool) {
	for _, key := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, v != nil
}

// TestSampleRequestsReplay sends the exact requests Incode's sample
// backends make (testdata/samples.json) to the simulator over HTTP, each
// about a session of its own, and checks that each is answered 2xx with
// every field its sample reads. The requests the simulator does not serve
// as the samples expect get the answer the file says.
func TestSampleRequestsReplay(t *testing.T) {
	const (
		flowID   = "sample-flow"
		email    = "exec@example.com"
		password = "exec-password"
	)
	samples, notReplayed := loadSamples(t)
	h := newHarness(t, Config{APIKey: testKey, AdminToken: testAdmin, AdminEmail: email, AdminPassword: password})
	defer h.sim.Close()
	varsFor := func(s started) *strings.Replacer {
		return strings.NewReplacer(
			"{{API_KEY}}", testKey, "{{FLOW_ID}}", flowID, "{{CLIENT_ID}}", s.ClientID,
			"{{ADMIN_TOKEN}}", testAdmin, "{{ADMIN_EMAIL}}", email, "{{ADMIN_PASSWORD}}", password,
			"{{TOKEN}}", s.Token, "{{INTERVIEW_ID}}", s.InterviewID, "{{REDIRECTION_URL}}", "https://example.com/",
		)
	}
	before := h.sim.Stats().CallsWithoutAPIKey
	withoutKey := 0
	for _, sample := range samples {
		t.Run(sample.Name, func(t *testing.T) {
			if _, ok := sample.Headers["x-api-key"]; !ok {
				withoutKey++
			}
			a := h.send(sample, varsFor(h.start()))
			if a.code < 200 || a.code > 299 {
				t.Fatalf("%s %s?%s (%s:%d): HTTP %d %s", sample.Method, sample.Path, sample.Query, sample.Source.Path, sample.Source.Line, a.code, a.body)
			}
			var v any
			if err := json.Unmarshal(a.body, &v); err != nil {
				t.Fatalf("answer %s: %v", a.body, err)
			}
			for _, path := range sample.Reads {
				if _, ok := lookupPath(v, path); !ok {
					t.Errorf("the sample reads %s, missing from %s", path, a.body)
				}
			}
		})
	}
	if got := h.sim.Stats().CallsWithoutAPIKey - before; got != int64(withoutKey) {
		t.Errorf("calls_without_api_key grew by %d over the samples, want the %d sent without one", got, withoutKey)
	}
	for _, sample := range notReplayed {
		t.Run("not replayed/"+sample.Name, func(t *testing.T) {
			if sample.Reason == "" || sample.SimulatorAnswers == 0 {
				t.Fatalf("%s says neither why it is not replayed nor what the simulator answers", sample.Name)
			}
			wantError(t, h.send(sample, varsFor(h.start())), sample.SimulatorAnswers, sample.Path)
		})
	}
}
