package simulator

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// raw sends a request with the headers hdr (name/value pairs) alone (no
// Content-Type unless hdr sets one) and, when host is not empty, that
// Host.
func (h *harness) raw(method, path, body, host string, hdr ...string) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

const evilOrigin = "https://evil.example"

// TestControlAPIRefusesWebPages: a page of any site, in a browser on the
// simulator's machine, reaches a loopback listener too. What it can send
// is refused in the simulator's error shape, and changes nothing: a
// cross-site form or fetch (403: it has an Origin header; 415: its body is
// not JSON), and a request to a host name the page rebound to 127.0.0.1
// (403: its Host). Programs, which send JSON to a loopback host with no
// Origin, are still answered.
func TestControlAPIRefusesWebPages(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	iv := h.start().InterviewID
	status := "/sim/interviews/" + iv + "/status"
	finished := `{"onboardingStatus":"ONBOARDING_FINISHED"}`
	json, text := []string{"Content-Type", "application/json"}, []string{"Content-Type", "text/plain"}
	with := func(hdr ...[]string) []string {
		var all []string
		for _, h := range hdr {
			all = append(all, h...)
		}
		return all
	}
	origin := []string{"Origin", evilOrigin}
	tests := []struct {
		name, method, path, body, host string
		hdr                            []string
		want                           int
		message                        string
	}{
		{"cross-site text/plain faults", "POST", "/sim/faults", `{"hang":true}`, "", with(text, origin), 403, "Origin"},
		{"cross-site text/plain status", "POST", status, finished, "", with(text, origin), 403, "Origin"},
		{"cross-site form", "POST", "/sim/faults", `{"hang":true}`, "", with([]string{"Content-Type", "application/x-www-form-urlencoded"}, origin), 403, "Origin"},
		{"cross-site JSON", "POST", "/sim/faults", `{"hang":true}`, "", with(json, origin), 403, "Origin"},
		{"null origin", "POST", status, finished, "", with(json, []string{"Origin", "null"}), 403, "Origin"},
		{"same-site origin", "POST", status, finished, "", with(json, []string{"Origin", "http://127.0.0.1"}), 403, "Origin"},
		{"cross-site read of the stats", "GET", "/sim/stats", "", "", origin, 403, "Origin"},
		{"cross-site delete", "DELETE", "/sim/interviews/" + iv, "", "", origin, 403, "Origin"},
		{"text/plain without Origin", "POST", "/sim/faults", `{"hang":true}`, "", text, 415, "application/json"},
		{"no Content-Type", "POST", status, finished, "", nil, 415, "application/json"},
		{"no Content-Type, no body", "POST", "/sim/interviews/" + iv + "/expire", "", "", nil, 415, "application/json"},
		{"JSON suffix type", "POST", status, finished, "", []string{"Content-Type", "application/vnd.api+json"}, 415, "application/json"},
		{"rebound host name", "POST", "/sim/faults", `{"hang":true}`, "evil.example:8090", json, 403, "evil.example:8090"},
		{"rebound host name, read", "GET", "/sim/stats", "", "evil.example", nil, 403, "Host"},
		{"rebound host name, delete", "DELETE", "/sim/interviews/" + iv, "", "attacker.localhost.evil.example", nil, 403, "Host"},
		{"LAN address as Host", "GET", "/sim/stats", "", "192.168.1.20:8090", nil, 403, "Host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.raw(tt.method, tt.path, tt.body, tt.host, tt.hdr...)
			wantError(t, a, tt.want, tt.path)
			if !strings.Contains(string(a.body), tt.message) {
				t.Errorf("refusal %s does not say %q", a.body, tt.message)
			}
		})
	}
	h.sim.mu.Lock()
	faults := h.sim.faults
	h.sim.mu.Unlock()
	if faults.Hang {
		t.Error("a refused call set faults")
	}
	if info, _ := h.sim.Session(iv); info.OnboardingStatus != StatusUnknown || info.Deleted || info.Expired {
		t.Errorf("a refused call changed the session: %+v", info)
	}

	_, port, _ := net.SplitHostPort(h.srv.Listener.Addr().String())
	port = ":" + port
	taken := []struct {
		name, method, path, body, host string
		hdr                            []string
		want                           int
	}{
		{"JSON", "POST", status, `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, "", json, 204},
		{"JSON with a charset", "POST", "/sim/faults", `{"latency_ms":1}`, "", []string{"Content-Type", "Application/JSON; charset=utf-8"}, 204},
		{"localhost", "GET", "/sim/stats", "", "localhost" + port, nil, 200},
		{"localhost with a dot", "GET", "/sim/stats", "", "LOCALHOST." + port, nil, 200},
		{"a name under localhost", "GET", "/sim/stats", "", "sim.localhost" + port, nil, 200},
		{"IPv6 loopback", "GET", "/sim/stats", "", "[::1]" + port, nil, 200},
		{"another loopback IP", "GET", "/sim/stats", "", "127.1.2.3", nil, 200},
		{"a read with no Content-Type", "GET", "/sim/interviews/" + iv, "", "", nil, 200},
		{"a delete with no Content-Type", "DELETE", "/sim/faults", "", "", nil, 204},
	}
	for _, tt := range taken {
		t.Run("taken/"+tt.name, func(t *testing.T) {
			if a := h.raw(tt.method, tt.path, tt.body, tt.host, tt.hdr...); a.code != tt.want {
				t.Errorf("HTTP %d, want %d: %s", a.code, tt.want, a.body)
			}
		})
	}
}

// TestControlAPIHosts: the public URL's host is taken besides loopback
// names; a request with the control token is taken from any Host (a page
// cannot know the token) but not with an Origin header.
func TestControlAPIHosts(t *testing.T) {
	t.Run("public URL", func(t *testing.T) {
		h := newHarness(t, Config{APIKey: testKey, PublicURL: "http://Sim.Example.test:8090/"})
		if a := h.raw("GET", "/sim/stats", "", "sim.example.test:8090"); a.code != 200 {
			t.Errorf("the public URL's host: HTTP %d: %s", a.code, a.body)
		}
		wantError(t, h.raw("GET", "/sim/stats", "", "other.example.test:8090"), 403, "/sim/stats")
	})
	t.Run("control token", func(t *testing.T) {
		h := newHarness(t, Config{APIKey: testKey, Addr: exposed, ControlToken: testControlToken})
		auth := []string{"Authorization", "Bearer " + testControlToken}
		if a := h.raw("GET", "/sim/stats", "", "sim.internal:8090", auth...); a.code != 200 {
			t.Errorf("token, any Host: HTTP %d: %s", a.code, a.body)
		}
		wantError(t, h.raw("POST", "/sim/faults", `{"hang":true}`, "", append(auth, "Origin", evilOrigin, "Content-Type", "application/json")...), 403, "/sim/faults")
		wantError(t, h.raw("POST", "/sim/faults", `{"hang":true}`, "", append(auth, "Content-Type", "text/plain")...), 415, "/sim/faults")
	})
	t.Run("loopback with a token configured", func(t *testing.T) {
		h := newHarness(t, Config{APIKey: testKey, ControlToken: testControlToken})
		wantError(t, h.raw("GET", "/sim/stats", "", "evil.example"), 403, "/sim/stats")
		if a := h.raw("GET", "/sim/stats", "", "evil.example", "Authorization", "Bearer "+testControlToken); a.code != 200 {
			t.Errorf("token, rebound Host: HTTP %d: %s", a.code, a.body)
		}
	})
}

// TestFlowRoutesTakeTheirPage: the flow page's own requests, which come
// from a browser (an Origin header, any Host the simulator is reached at),
// still work: the control API's refusals are its own.
func TestFlowRoutesTakeTheirPage(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, PublicURL: "http://flows.example.test:8090"})
	s := h.start()
	key := flowKeyOf(t, h.flowURL(s))
	page := "/flow/" + s.InterviewID
	if a := h.raw("GET", page+"?key="+key, "", "flows.example.test:8090"); a.code != 200 {
		t.Fatalf("the flow page: HTTP %d", a.code)
	}
	hdr := []string{"Content-Type", "application/json", "X-Flow-Key", key, "Origin", "http://flows.example.test:8090"}
	if a := h.raw("POST", page+"/status", `{"onboardingStatus":"ID_VALIDATION_FINISHED"}`, "flows.example.test:8090", hdr...); a.code != 204 {
		t.Errorf("the page's status step: HTTP %d: %s", a.code, a.body)
	}
	if a := h.raw("POST", page+"/score", `{"status":"WARN"}`, "another-name.example.test", hdr...); a.code != 204 {
		t.Errorf("the page's score step: HTTP %d: %s", a.code, a.body)
	}
	if got := readStatus(t, h, s.Token); got != StatusIDValidationFinished {
		t.Errorf("status %q after the page's step", got)
	}
}
