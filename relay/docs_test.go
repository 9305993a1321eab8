package relay_test

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
	"github.com/pushgate/pushgate/relay"
	"github.com/pushgate/pushgate/relay/relaytest"
)

// otherSecret is the secret the documented receivers are tested with
// besides theirs (relaytest.Secret): a wrong secret, or the other half of
// a rotation.
const otherSecret = "whsec_oc9qYnrDeO2i0D1d1V3TThlEbJ9WHGPbkLmWkRkHTn0="

// docReceiver is one receiver program of docs/relay.md's "Verifying the
// signature": the block after <!-- tested: lang -->, fenced as fence,
// saved as file and run by tool.
type docReceiver struct {
	lang, fence, file, tool string
}

var docReceivers = []docReceiver{
	{lang: "node", fence: "js", file: "receiver.js", tool: "node"},
	{lang: "python", fence: "python", file: "receiver.py", tool: "python3"},
	{lang: "go", fence: "go", file: "main.go", tool: "go"},
}

// TestDocsVerifyingTheSignature runs each receiver of docs/relay.md, as
// the page gives it, and sends it deliveries signed by pushgate's signer:
// it must accept the valid ones (a rotation's too) and reject the rest.
func TestDocsVerifyingTheSignature(t *testing.T) {
	snippets := docSnippets(t, "../docs/relay.md", "## Verifying the signature")
	for _, rc := range docReceivers {
		t.Run(rc.lang, func(t *testing.T) {
			t.Parallel()
			s, ok := snippets[rc.lang]
			if !ok {
				t.Fatalf("docs/relay.md: no <!-- tested: %s --> block in its section", rc.lang)
			}
			if s.fence != rc.fence {
				t.Fatalf("docs/relay.md: the %s block is fenced as %q, want %q", rc.lang, s.fence, rc.fence)
			}
			tool := testenv.Program(t, rc.tool, "this receiver of docs/relay.md")
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, rc.file), []byte(s.code), 0o600); err != nil {
				t.Fatal(err)
			}
			argv := []string{tool, rc.file}
			if rc.lang == "go" {
				argv = []string{buildGo(t, tool, dir, rc.file)}
			}
			r := startDocReceiver(t, dir, argv)
			for _, c := range signedCases() {
				t.Run(c.name, func(t *testing.T) {
					code := r.post(t, c)
					if ok := code/100 == 2; ok != c.accept || (!ok && code/100 != 4) {
						t.Errorf("answered %d, want %s\nthe receiver's output:\n%s", code, map[bool]string{true: "2xx", false: "4xx"}[c.accept], r.out)
					}
				})
			}
		})
	}
}

// signedCase is one delivery sent to a receiver: body signed with secrets
// age ago, then changed by mangle.
type signedCase struct {
	name    string
	kind    string // Pushgate-Event-Kind
	body    []byte
	secrets []string      // nil means relaytest.Secret alone
	age     time.Duration // how long ago it was signed; negative is ahead
	mangle  func(h http.Header, body []byte) []byte
	accept  bool
}

func signedCases() []signedCase {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	status := relay.StatusJSON("64f1c2a9e8b7d6c5b4a39281", "ID_VALIDATION_FINISHED", 3, "user-42", at)
	finished := relay.EndedJSON("64f1c2a9e8b7d6c5b4a39281", relay.End{Reason: relay.ReasonFinished, Status: "ONBOARDING_FINISHED", ExternalID: "user-42"}, "OK", at)
	expired := relay.EndedJSON("64f1c2a9e8b7d6c5b4a39281", relay.End{Reason: relay.ReasonExpired, Status: "EXPIRED"}, "", at)
	// The upstream's own body, relayed byte for byte: spacing, key order,
	// escapes and non-ASCII text that re-serialized JSON would change.
	upstream := []byte("{ \"interviewId\" : \"64f1c2a9e8b7d6c5b4a39281\",\n  \"onboardingStatus\": \"ONBOARDING_FINISHED\",\n  \"clientId\": \"acme\", \"name\": \"Zoë \\u00e9\", \"score\": 1.50 }\n")
	drop := func(name string) func(http.Header, []byte) []byte {
		return func(h http.Header, body []byte) []byte { h.Del(name); return body }
	}
	return []signedCase{
		{name: "session.status", kind: relay.KindStatus, body: status, accept: true},
		{name: "session.ended", kind: relay.KindEnded, body: finished, accept: true},
		{name: "session.ended with a null verdict", kind: relay.KindEnded, body: expired, accept: true},
		{name: "an upstream webhook", kind: relay.KindUpstream, body: upstream, accept: true},
		{name: "a rotation, the receiver's secret second", kind: relay.KindStatus, body: status, secrets: []string{otherSecret, relaytest.Secret}, accept: true},
		{name: "a rotation, the receiver's secret first", kind: relay.KindStatus, body: status, secrets: []string{relaytest.Secret, otherSecret}, accept: true},
		{name: "signed 4 minutes ago", kind: relay.KindStatus, body: status, age: 4 * time.Minute, accept: true},
		{name: "a tampered body", kind: relay.KindStatus, body: status, mangle: func(_ http.Header, body []byte) []byte {
			return bytes.Replace(body, []byte(`"seq":3`), []byte(`"seq":4`), 1)
		}},
		{name: "a tampered upstream body", kind: relay.KindUpstream, body: upstream, mangle: func(_ http.Header, body []byte) []byte {
			return bytes.Replace(body, []byte(`"interviewId" : `), []byte(`"interviewId":`), 1)
		}},
		{name: "a wrong secret", kind: relay.KindStatus, body: status, secrets: []string{otherSecret}},
		{name: "signed 6 minutes ago", kind: relay.KindStatus, body: status, age: 6 * time.Minute},
		{name: "signed 6 minutes ahead", kind: relay.KindStatus, body: status, age: -6 * time.Minute},
		{name: "a changed timestamp", kind: relay.KindStatus, body: status, mangle: func(h http.Header, body []byte) []byte {
			ts, _ := strconv.ParseInt(h.Get(relay.HeaderTimestamp), 10, 64)
			h.Set(relay.HeaderTimestamp, strconv.FormatInt(ts+1, 10))
			return body
		}},
		{name: "a changed id", kind: relay.KindStatus, body: status, mangle: func(h http.Header, body []byte) []byte {
			h.Set(relay.HeaderID, h.Get(relay.HeaderID)+"X")
			return body
		}},
		{name: "a signature of another version", kind: relay.KindStatus, body: status, mangle: func(h http.Header, body []byte) []byte {
			h.Set(relay.HeaderSignature, "v2,"+strings.TrimPrefix(h.Get(relay.HeaderSignature), "v1,"))
			return body
		}},
		{name: "no webhook-id", kind: relay.KindStatus, body: status, mangle: drop(relay.HeaderID)},
		{name: "no webhook-timestamp", kind: relay.KindStatus, body: status, mangle: drop(relay.HeaderTimestamp)},
		{name: "no webhook-signature", kind: relay.KindStatus, body: status, mangle: drop(relay.HeaderSignature)},
	}
}

// docSnippet is a fenced block of the page, as written there.
type docSnippet struct {
	fence, code string
}

var testedMarker = regexp.MustCompile(`^<!-- tested: ([a-z]+) -->$`)

// docSnippets returns the blocks of the section heading of the page at
// path marked <!-- tested: lang -->, by lang: the fence must follow the
// marker, blank lines apart.
func docSnippets(t *testing.T, path, heading string) map[string]docSnippet {
	t.Helper()
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.ReplaceAll(string(page), "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if l == heading {
			start = i + 1
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s: no %q section", path, heading)
	}
	out := map[string]docSnippet{}
	for i := start; i < len(lines) && !strings.HasPrefix(lines[i], "## ") && !strings.HasPrefix(lines[i], "# "); i++ {
		m := testedMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Fatalf("%s:%d: a second %q block", path, i+1, m[1])
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j == len(lines) || !strings.HasPrefix(lines[j], "```") {
			t.Fatalf("%s:%d: %s is not followed by a fenced block", path, i+1, lines[i])
		}
		end := j + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("%s:%d: the block is not closed", path, j+1)
		}
		out[m[1]] = docSnippet{fence: strings.TrimPrefix(lines[j], "```"), code: strings.Join(lines[j+1:end], "\n") + "\n"}
		i = end
	}
	return out
}

// buildGo builds the standard-library-only program file in dir and returns
// the binary: run directly, so that killing it leaves no child behind.
func buildGo(t *testing.T, goTool, dir, file string) string {
	t.Helper()
	bin := filepath.Join(dir, "receiver")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command(goTool, "build", "-o", bin, file)
	cmd.Dir = dir
	// The temporary directory is no module: the file is built alone, with
	// the standard library only, so nothing is downloaded.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GO111MODULE=on")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", file, err, out)
	}
	return bin
}

// runningReceiver is a receiver program started by a test.
type runningReceiver struct {
	url    string
	out    *watchedOutput
	client *http.Client
}

// startDocReceiver starts argv in dir with the receiver's secret and PORT=0
// (a free port), and waits until it says where it listens. The process is
// killed, and waited for, when the test ends.
func startDocReceiver(t *testing.T, dir string, argv []string) *runningReceiver {
	t.Helper()
	out := &watchedOutput{ready: make(chan string, 1)}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PUSHGATE_RELAY_SECRET="+relaytest.Secret, "PORT=0")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second // a child that kept the output open
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		_ = cmd.Process.Kill()
		<-done
	})
	select {
	case port := <-out.ready:
		return &runningReceiver{url: "http://127.0.0.1:" + port + "/webhooks/pushgate", out: out, client: client}
	case <-done:
		t.Fatalf("%s exited before listening: %v\n%s", filepath.Base(argv[len(argv)-1]), waitErr, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not say where it listens within 30s:\n%s", filepath.Base(argv[len(argv)-1]), out)
	}
	return nil
}

// post sends c to the receiver, signed now (less c.age) as a delivery is,
// and returns the status of its answer.
func (r *runningReceiver) post(t *testing.T, c signedCase) int {
	t.Helper()
	secrets := c.secrets
	if secrets == nil {
		secrets = []string{relaytest.Secret}
	}
	signed, err := relay.SignedHeaders(secrets, relay.NewID(), time.Now().Add(-c.age), c.body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "pushgate-relay")
	h.Set("Pushgate-Event-Kind", c.kind)
	for k, v := range signed {
		h.Set(k, v)
	}
	body := c.body
	if c.mangle != nil {
		body = c.mangle(h, bytes.Clone(body))
	}
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("POST: %v\nthe receiver's output:\n%s", err, r.out)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// watchedOutput keeps a program's output and sends, once, the port of its
// first "listening on ...:port" line.
type watchedOutput struct {
	mu    sync.Mutex // protects buf and told
	buf   bytes.Buffer
	told  bool
	ready chan string // buffered: one port
}

var listeningLine = regexp.MustCompile(`listening on \S*:([0-9]+)\r?\n`)

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.told {
		if m := listeningLine.FindSubmatch(w.buf.Bytes()); m != nil {
			w.told = true
			w.ready <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *watchedOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes())); sc.Scan(); {
		b.WriteString("\t" + sc.Text() + "\n")
	}
	return b.String()
}
