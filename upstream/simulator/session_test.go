package simulator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestAdminLogIn: POST /executive/log-in answers admin tokens that the
// admin endpoints accept until they expire, then refuse with 401; wrong
// credentials get 401, a missing API key 403.
func TestAdminLogIn(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, AdminEmail: "exec@example.com", AdminPassword: "pw", AdminTokenTTL: 300 * time.Millisecond})
	s := h.start()
	logIn := func(body string, hdr ...string) answer {
		return h.do("POST", "/executive/log-in", body, append([]string{"api-version", "1.0", "Content-Type", "application/json"}, hdr...)...)
	}
	wantError(t, logIn(`{"email":"exec@example.com","password":"wrong"}`, "x-api-key", testKey), http.StatusUnauthorized, "/executive/log-in")
	wantError(t, logIn(`{"email":"exec@example.com","password":"pw"}`), http.StatusForbidden, "/executive/log-in")
	a := logIn(`{"email":"exec@example.com","password":"pw"}`, "x-api-key", testKey)
	var tok struct{ Token string }
	if a.code != http.StatusOK || json.Unmarshal(a.body, &tok) != nil || tok.Token == "" {
		t.Fatalf("log-in: %d %s", a.code, a.body)
	}
	read := func() answer {
		return h.do("GET", "/omni/get/onboarding/status?id="+s.InterviewID, "", "api-version", "1.0", "x-api-key", testKey, "X-Incode-Hardware-Id", tok.Token)
	}
	if a := read(); a.code != http.StatusOK {
		t.Fatalf("admin read with a fresh token: %d %s", a.code, a.body)
	}
	time.Sleep(350 * time.Millisecond)
	wantError(t, read(), http.StatusUnauthorized, "/omni/get/onboarding/status")
	if n := h.sim.Stats().LogIn; n != 3 {
		t.Fatalf("%d log-ins counted, want 3", n)
	}
}

// TestForgottenSessions: a deleted interview answers 404 to session and
// admin reads alike; an expired session token answers 401 to session
// reads while admin reads still work.
func TestForgottenSessions(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey, AdminToken: testAdmin})
	gone, stale := h.start(), h.start()
	admin := func(id string) answer {
		return h.do("GET", "/omni/get/onboarding/status?id="+id, "", "api-version", "1.0", "x-api-key", testKey, "X-Incode-Hardware-Id", testAdmin)
	}
	if a := h.do("DELETE", "/sim/interviews/"+gone.InterviewID, ""); a.code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", a.code, a.body)
	}
	if a := h.do("POST", "/sim/interviews/"+stale.InterviewID+"/expire", ""); a.code != http.StatusNoContent {
		t.Fatalf("expire: %d %s", a.code, a.body)
	}
	wantError(t, h.sessionGet("/0/omni/get/onboarding/status", gone.Token), http.StatusNotFound, "/0/omni/get/onboarding/status")
	wantError(t, h.sessionGet("/0/omni/get/score", gone.Token), http.StatusNotFound, "/0/omni/get/score")
	wantError(t, admin(gone.InterviewID), http.StatusNotFound, "/omni/get/onboarding/status")
	wantError(t, h.sessionGet("/0/omni/get/onboarding/status", stale.Token), http.StatusUnauthorized, "/0/omni/get/onboarding/status")
	if a := admin(stale.InterviewID); a.code != http.StatusOK {
		t.Fatalf("admin read of an interview whose token expired: %d %s", a.code, a.body)
	}
	wantError(t, h.do("DELETE", "/sim/interviews/nope", ""), http.StatusNotFound, "/sim/interviews/nope")
}

// TestStartOptionsAreKept: what a start asked for is kept with the
// session, for tests to check (GET /sim/interviews/{id}).
func TestStartOptionsAreKept(t *testing.T) {
	h := newHarness(t, Config{APIKey: testKey})
	a := h.do("POST", "/omni/start", `{"configurationId":"f","countryCode":"ALL","language":"es-ES","externalCustomerId":"cust-7","redirectionUrl":"https://app.example/done","customFields":{"plan":"gold"}}`,
		"api-version", "1.0", "x-api-key", testKey)
	var s started
	if a.code != http.StatusOK || json.Unmarshal(a.body, &s) != nil {
		t.Fatalf("start: %d %s", a.code, a.body)
	}
	a = h.do("GET", "/sim/interviews/"+s.InterviewID, "")
	var info SessionInfo
	if a.code != http.StatusOK || json.Unmarshal(a.body, &info) != nil {
		t.Fatalf("GET /sim/interviews: %d %s", a.code, a.body)
	}
	st := info.Start
	if st.Language != "es-ES" || st.ExternalCustomerID != "cust-7" || st.RedirectionURL != "https://app.example/done" || string(st.CustomFields) != `{"plan":"gold"}` {
		t.Fatalf("kept %+v", st)
	}
	a = h.do("POST", "/omni/start", `{"configurationId":"f","customFields":[1]}`, "api-version", "1.0", "x-api-key", testKey)
	wantError(t, a, http.StatusBadRequest, "/omni/start")
}
