package upstream_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/pushgate/pushgate/upstream"
	"github.com/pushgate/pushgate/upstream/simulator"
)

// TestConformance records, for every call pushgate makes to the upstream,
// the exact method, path, query, headers and body it sends, and checks
// them against the shapes of the upstream's docs and sample backends
// (shared/upstream-api.md: "Calls", "Hosts and headers" and "Checked
// against Incode's docs", and "Checked again" of 2026-12, which stands
// where they differ). Every request carries api-version: 1.0,
// Content-Type: application/json and x-api-key: the API's reference asks
// for the key on every call, /0/omni/... calls and the probe included, as
// Incode's Node, Java, Python and .NET samples send it. A session token or
// an admin token goes in X-Incode-Hardware-Id.
func TestConformance(t *testing.T) {
	sim := simulator.New(simulator.Config{APIKey: testKey, AdminToken: testAdmin, AdminEmail: execEmail, AdminPassword: execPassword})
	rec := &recorder{next: sim}
	srv := newServer(t, rec)
	session := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, FlowID: "flow-42"})
	admin := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminToken: testAdmin})
	loggedIn := newClient(t, upstream.Config{BaseURL: srv.URL, APIKey: testKey, AdminEmail: execEmail, AdminPassword: execPassword})
	ctx := context.Background()
	s, err := session.Start(ctx, upstream.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetStatus(s.InterviewID, "ONBOARDING_FINISHED")
	id := s.InterviewID

	type shape struct {
		name         string
		call         func() error
		method, path string
		query        string
		token        string         // X-Incode-Hardware-Id; "" must be absent
		body         map[string]any // the JSON object sent; nil: no body
		calls        int            // requests the call makes, when not 1 (a log-in first)
	}
	for _, tc := range []shape{
		{name: "start", call: func() error { _, err := session.Start(ctx, upstream.StartOptions{}); return err },
			method: "POST", path: "/omni/start",
			body: map[string]any{"configurationId": "flow-42", "countryCode": "ALL", "language": "en-US"}},
		{name: "start with every option", call: func() error {
			_, err := session.Start(ctx, upstream.StartOptions{Language: "pt-BR", ExternalCustomerID: "cust-1",
				RedirectionURL: "https://app.example/done", CustomFields: map[string]any{"plan": "gold"}})
			return err
		},
			method: "POST", path: "/omni/start",
			body: map[string]any{"configurationId": "flow-42", "countryCode": "ALL", "language": "pt-BR",
				"externalCustomerId": "cust-1", "redirectionUrl": "https://app.example/done", "customFields": map[string]any{"plan": "gold"}}},
		{name: "start in another flow", call: func() error {
			_, err := session.Start(ctx, upstream.StartOptions{ConfigurationID: "flow-business-mx"})
			return err
		},
			method: "POST", path: "/omni/start",
			body: map[string]any{"configurationId": "flow-business-mx", "countryCode": "ALL", "language": "en-US"}},
		{name: "onboarding URL", call: func() error { _, err := session.OnboardingURL(ctx, s); return err },
			method: "GET", path: "/0/omni/onboarding-url", query: "clientId=" + s.ClientID, token: s.Token},
		{name: "status, session token", call: func() error { _, err := session.Status(ctx, id, s.Token); return err },
			method: "GET", path: "/0/omni/get/onboarding/status", token: s.Token},
		{name: "score, session token", call: func() error { _, err := session.Score(ctx, id, s.Token); return err },
			method: "GET", path: "/0/omni/get/score", token: s.Token},
		{name: "status, admin token", call: func() error { _, err := admin.Status(ctx, id, ""); return err },
			method: "GET", path: "/omni/get/onboarding/status", query: "id=" + id, token: testAdmin},
		{name: "score, admin token", call: func() error { _, err := admin.Score(ctx, id, ""); return err },
			method: "GET", path: "/omni/get/score", query: "id=" + id, token: testAdmin},
		{name: "probe", call: func() error { return session.Probe(ctx) },
			method: "GET", path: "/0/omni/get/onboarding/status"},
		{name: "probe, admin mode", call: func() error { return admin.Probe(ctx) },
			method: "GET", path: "/0/omni/get/onboarding/status"},
		{name: "executive log-in", call: func() error { _, err := loggedIn.Status(ctx, id, ""); return err },
			method: "POST", path: "/executive/log-in", calls: 2,
			body: map[string]any{"email": execEmail, "password": execPassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.mu.Lock()
			before := len(rec.reqs)
			rec.mu.Unlock()
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			reqs := append([]recorded(nil), rec.reqs[before:]...)
			rec.mu.Unlock()
			if want := max(tc.calls, 1); len(reqs) != want {
				t.Fatalf("%d requests, want %d", len(reqs), want)
			}
			r := reqs[0]
			if r.method != tc.method || r.path != tc.path || r.query != tc.query {
				t.Errorf("sent %s %s?%s, want %s %s?%s", r.method, r.path, r.query, tc.method, tc.path, tc.query)
			}
			wantHeaders(t, r, map[string]string{"x-api-key": testKey, "X-Incode-Hardware-Id": tc.token})
			for _, r := range reqs[1:] {
				if got := r.header.Get("x-api-key"); got != testKey {
					t.Errorf("%s %s: x-api-key %q, want the key on every call", r.method, r.path, got)
				}
			}
			var body map[string]any
			if len(r.body) > 0 {
				if err := json.Unmarshal(r.body, &body); err != nil {
					t.Fatalf("body %q is not a JSON object: %v", r.body, err)
				}
			}
			if !reflect.DeepEqual(body, tc.body) {
				t.Errorf("body %s, want %v", r.body, tc.body)
			}
			if tc.method == http.MethodGet && len(r.body) > 0 {
				t.Errorf("a GET with a body: %q", r.body)
			}
		})
	}
}
