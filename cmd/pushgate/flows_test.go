package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestFlowIDList: -flow-id (or PUSHGATE_FLOW_ID) is a comma-separated
// list; spaces around items and empty items are dropped, a flow listed
// twice or holding a space is refused, and -upstream needs one flow at
// least.
func TestFlowIDList(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want []string
	}{
		{"one", []string{"-flow-id", "flowA"}, "", []string{"flowA"}},
		{"several", []string{"-flow-id", "flowA,flowB,flowC"}, "", []string{"flowA", "flowB", "flowC"}},
		{"spaces around items", []string{"-flow-id", " flowA , flowB "}, "", []string{"flowA", "flowB"}},
		{"empty items", []string{"-flow-id", ",flowA,,flowB,"}, "", []string{"flowA", "flowB"}},
		{"from the environment", nil, "flowA,flowB", []string{"flowA", "flowB"}},
		{"the flag wins", []string{"-flow-id", "flowC"}, "flowA,flowB", []string{"flowC"}},
		{"none: the simulator's", nil, "", nil},
		{"with an upstream", []string{"-upstream", "https://api.example", "-api-key", "k", "-flow-id", "flowA,flowB"}, "", []string{"flowA", "flowB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return map[string]string{"PUSHGATE_FLOW_ID": tc.env}[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.gw.HTTP.Flows, tc.want) {
				t.Errorf("flows %q, want %q", c.gw.HTTP.Flows, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"listed twice", []string{"-flow-id", "flowA,flowB,flowA"}, `"flowA" is listed twice`},
		{"listed twice, spaced", []string{"-flow-id", "flowA, flowA"}, `"flowA" is listed twice`},
		{"separated by spaces", []string{"-flow-id", "flowA flowB"}, "separate flows with commas"},
		{"an upstream without flows", []string{"-upstream", "https://api.example", "-api-key", "k", "-flow-id", " , "}, "-flow-id"},
		{"an upstream without -flow-id", []string{"-upstream", "https://api.example", "-api-key", "k"}, "-flow-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.msg)
			}
		})
	}
}

// TestSeveralFlows runs the command against the built-in simulator with
// two flows: the backend starts sessions in the one it names, or in the
// first; a flow not listed, or a configurationId that is not a string,
// gets a 400 with a JSON reason; the page's sessions run the first flow.
// Without -flow-id, sessions run the simulator's own flow.
func TestSeveralFlows(t *testing.T) {
	const token = "flows-api-token-0123456789"
	in := start(t, "-flow-id", "flowA,flowB", "-api-token", token)
	for _, tc := range []struct{ name, body, want string }{
		{"named", `{"configurationId":"flowB"}`, "flowB"},
		{"none named", `{}`, "flowA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postSession(t, in.base, token, tc.body)
			var c struct{ InterviewID string }
			if err := json.Unmarshal([]byte(body), &c); err != nil || code != http.StatusCreated {
				t.Fatalf("POST /v1/sessions %s: %d %s, want 201", tc.body, code, body)
			}
			if got := simFlow(t, in.sim, c.InterviewID); got != tc.want {
				t.Errorf("the simulator's session runs %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, body, code string }{
		{"a flow not listed", `{"configurationId":"nope"}`, "unknown_flow"},
		{"not a string", `{"configurationId":7}`, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postSession(t, in.base, token, tc.body)
			var e struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusBadRequest || e.Code != tc.code || !strings.Contains(e.Error, "configurationId") {
				t.Errorf("POST /v1/sessions %s: %d %s, want 400 with code %s naming configurationId", tc.body, code, body, tc.code)
			}
		})
	}
	t.Run("the page's session", func(t *testing.T) {
		var s struct{ InterviewID string }
		getJSON(t, in.base+"/onboarding-url", &s)
		if got := simFlow(t, in.sim, s.InterviewID); got != "flowA" {
			t.Errorf("the page's session runs %q, want flowA", got)
		}
	})
	t.Run("no -flow-id", func(t *testing.T) {
		plain := start(t)
		var s struct{ InterviewID string }
		getJSON(t, plain.base+"/onboarding-url", &s)
		if got := simFlow(t, plain.sim, s.InterviewID); got != "pushgate-sim-flow" {
			t.Errorf("the session runs %q, want pushgate-sim-flow", got)
		}
	})
}

// postSession calls POST /v1/sessions with an API token and returns the
// status and body.
func postSession(t *testing.T, base, token, body string) (int, string) {
	t.Helper()
	return postJSON(t, base+"/v1/sessions", body, "Authorization", "Bearer "+token)
}

// simFlow is the flow (configurationId) the simulator's session of
// interviewID started with, from its control API.
func simFlow(t *testing.T, sim, interviewID string) string {
	t.Helper()
	var info struct {
		Start struct {
			ConfigurationID string `json:"configurationId"`
		} `json:"start"`
	}
	getJSON(t, sim+"/sim/interviews/"+interviewID, &info)
	return info.Start.ConfigurationID
}
