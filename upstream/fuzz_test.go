package upstream

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// Decoders FuzzDecode exercises; the fuzzed selector byte picks one, modulo
// their count.
const (
	decSession = iota
	decOnboardingURL
	decStatus
	decScore
	decErrorMessage
	decLogIn
	decoders
)

// maxFuzzAnswer caps the answers FuzzDecode tries; every seed fits.
const maxFuzzAnswer = 2 << 10

// scoreExample is the score answer of upstream-api.md.
const scoreExample = `{"idValidation": {"photoSecurityAndQuality": [{"key": "tamperCheck", "value": "PASSED", "status": "OK"}],
                  "idSpecific": [{"key": "documentClassification", "value": "100", "status": "OK"}],
                  "appliedRule": null, "overall": {"value": "100.0", "status": "OK"}},
 "liveness": {"overall": {"value": "95.0", "status": "OK"}},
 "faceRecognition": {"existingUser": false, "overall": {"value": "92.0", "status": "OK"}},
 "idOcrConfidence": {"overallConfidence": {"value": "99.0", "status": "OK"}},
 "overall": {"value": "100.0", "status": "OK"}}`

// decodeSeeds are answer bodies as the upstream sends them, and as it might
// send them on a bad day. Each is tried against every decoder.
var decodeSeeds = []string{
	// Realistic answers.
	`{"token":"eyJhbGciOiJIUzI1NiJ9.e30.sig","interviewId":"64f1c0ffee0123456789abcd","interviewCode":"QX7K2P","flowType":"flow","clientId":"demo","env":"stage","existingSession":false}`,
	`{"url":"https://demo.incodesmile.com/flow/64f1c0ffee?uuid=1b2c&lang=en-US"}`,
	`{"onboardingStatus":"ONBOARDING_FINISHED"}`,
	`{"onboardingStatus":"MANUAL_REVIEW_REJECTED"}`,
	scoreExample,
	`{"timestamp":"2024-05-01T10:00:00.000+00:00","status":401,"error":"Unauthorized","message":"Invalid token","path":"/0/omni/get/score"}`,
	// Unknown fields and unknown statuses pass through.
	`{"onboardingStatus":"SELFIE_RETAKE_REQUESTED","since":1714557600,"extra":{"a":[1,2,{"b":null}]}}`,
	`{"interviewId":"abc","token":"t","existingSession":true,"newField":{"x":[]},"flowType":null}`,
	`{"overall":{"value":"0.0","status":"UNKNOWN","reason":"not yet"},"future":[true,false,null]}`,
	// Nulls and missing pieces.
	`null`, ``, `{}`, `[]`, `"ONBOARDING_FINISHED"`, `0`,
	`{"onboardingStatus":null}`, `{"onboardingStatus":""}`, `{"onboardingStatus":3}`,
	`{"interviewId":"abc"}`, `{"interviewId":"","token":"t"}`,
	`{"idValidation":null,"liveness":null,"faceRecognition":null,"overall":null}`,
	`{"overall":{"status":null}}`, `{"overall":{"status":7}}`, `{"overall":[]}`,
	`{"url":""}`, `{"url":null}`, `{"url":"/flow/x"}`, `{"url":"javascript:alert(1)"}`,
	`{"url":"//evil.example/flow"}`, `{"url":"HTTPS://Demo.Example:8443/flow"}`,
	`{"url":"http://[::1]:8080/flow"}`, `{"url":"http://a b/"}`, `{"url":"https:///flow"}`,
	`{"message":"   ","error":"Forbidden"}`, `{"message":{"text":"x"},"error":["y"]}`,
	// Huge numbers.
	`{"onboardingStatus":"UNKNOWN","n":1e999,"m":123456789012345678901234567890}`,
	`{"interviewId":"a","token":"b","existingSession":1e999}`,
	`{"overall":{"value":1e400,"status":"WARN"},"score":-0.0000000000000000000001e-999}`,
	// Deep nesting, inside the limit of encoding/json (TestDecodeTooDeep
	// goes past it).
	`{"overall":{"status":"FAIL"},"deep":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`,
	// Invalid UTF-8, escapes, BOM, white space.
	"{\"onboardingStatus\":\"\xff\xfeFINISHED\"}",
	"{\"interviewId\":\"\xc0\xaf\",\"token\":\"t\xed\xa0\x80\"}",
	"{\"overall\":{\"status\":\"O\xffK\"}}",
	`{"onboardingStatus":"\u0000\ud800\u2028<script>"}`,
	`{"url":"https://example.com/\u0000"}`,
	"\xef\xbb\xbf{\"onboardingStatus\":\"UNKNOWN\"}",
	" \r\n\t{\"overall\":{\"status\":\"WARN\"}}\n\n",
	"\u00a0{\"overall\":{\"status\":\"OK\"}}\u0085",
	"\t\n",
	// Duplicate keys, case-folded keys, trailing data.
	`{"overall":{"status":"OK"},"OVERALL":{"status":"FAIL"}}`,
	`{"onboardingStatus":"A","onboardingStatus":"B"}`,
	`{"onboardingStatus":"A"} {}`,
	`{"overall":{"status":"OK"}`,
}

// FuzzDecode feeds an answer body to one of the decoders and checks that it
// never panics and that a result it accepts keeps the decoder's promises.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		for kind := range byte(decoders) {
			f.Add(kind, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, raw []byte) {
		// Longer answers reach no new code, and a long input the fuzzer
		// finds interesting takes minutes to minimize.
		raw = raw[:min(len(raw), maxFuzzAnswer)]
		switch kind % decoders {
		case decSession:
			checkSession(t, raw)
		case decOnboardingURL:
			checkOnboardingURL(t, raw)
		case decStatus:
			checkStatus(t, raw)
		case decScore:
			checkScore(t, raw)
		case decErrorMessage:
			checkErrorMessage(t, raw)
		case decLogIn:
			checkLogIn(t, raw)
		}
	})
}

func checkLogIn(t *testing.T, raw []byte) {
	tok, err := decodeLogIn(raw)
	switch {
	case err != nil && tok != "":
		t.Fatalf("decodeLogIn(%q) = %q with error %v; want no token", raw, tok, err)
	case err == nil && (tok == "" || !json.Valid(raw)):
		t.Fatalf("decodeLogIn(%q) = %q: want a token from a JSON answer", raw, tok)
	}
}

func checkSession(t *testing.T, raw []byte) {
	s, err := decodeSession(raw)
	if err != nil {
		if s != (Session{}) {
			t.Fatalf("decodeSession(%q) = %+v with error %v; want the zero Session", raw, s, err)
		}
		return
	}
	if s.InterviewID == "" || s.Token == "" {
		t.Fatalf("decodeSession(%q) = %+v: empty InterviewID or Token", raw, s)
	}
	if !json.Valid(raw) {
		t.Fatalf("decodeSession accepted invalid JSON %q", raw)
	}
	for _, v := range []string{s.InterviewID, s.Token, s.InterviewCode, s.FlowType, s.ClientID, s.Env} {
		if !utf8.ValidString(v) {
			t.Fatalf("decodeSession(%q): field %q is not valid UTF-8", raw, v)
		}
	}
	// What the gateway stores re-encodes to the same Session.
	again, err := json.Marshal(sessionJSON(s))
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := decodeSession(again); err != nil || s2 != s {
		t.Fatalf("session %+v re-decodes to %+v, %v", s, s2, err)
	}
}

func checkOnboardingURL(t *testing.T, raw []byte) {
	got, err := decodeOnboardingURL(raw)
	if err != nil {
		if got != "" {
			t.Fatalf("decodeOnboardingURL(%q) = %q with error %v", raw, got, err)
		}
		return
	}
	if !json.Valid(raw) {
		t.Fatalf("decodeOnboardingURL accepted invalid JSON %q", raw)
	}
	u, err := url.Parse(got)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Fatalf("decodeOnboardingURL(%q) = %q: not an absolute http(s) URL (%v)", raw, got, err)
	}
	// Independently of net/url: what a browser navigates to starts with
	// the scheme and an authority, whatever the case.
	lower := strings.ToLower(got)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		t.Fatalf("decodeOnboardingURL(%q) = %q: does not start with http:// or https://", raw, got)
	}
}

func checkStatus(t *testing.T, raw []byte) {
	got, err := decodeStatus(raw)
	if err != nil {
		if got != "" {
			t.Fatalf("decodeStatus(%q) = %q with error %v", raw, got, err)
		}
		return
	}
	if got == "" || !utf8.ValidString(got) {
		t.Fatalf("decodeStatus(%q) = %q: empty or not valid UTF-8", raw, got)
	}
	if !json.Valid(raw) {
		t.Fatalf("decodeStatus accepted invalid JSON %q", raw)
	}
}

func checkScore(t *testing.T, raw []byte) {
	s, err := decodeScore(raw)
	if err != nil {
		if s.Status != "" || s.Raw != nil {
			t.Fatalf("decodeScore(%q) = %+v with error %v; want the zero Score", raw, s, err)
		}
		return
	}
	if !json.Valid(s.Raw) || s.Raw[0] != '{' || s.Raw[len(s.Raw)-1] != '}' {
		t.Fatalf("decodeScore(%q): Raw %q is not a JSON object", raw, s.Raw)
	}
	if !bytes.Equal(s.Raw, bytes.TrimSpace(raw)) {
		t.Fatalf("decodeScore(%q): Raw %q is not the trimmed answer", raw, s.Raw)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(s.Raw, &fields); err != nil {
		t.Fatalf("decodeScore(%q): Raw does not decode as an object: %v", raw, err)
	}
	if s2, err := decodeScore(s.Raw); err != nil || s2.Status != s.Status || !bytes.Equal(s2.Raw, s.Raw) {
		t.Fatalf("decodeScore(%q) = %+v, but its Raw re-decodes to %+v, %v", raw, s, s2, err)
	}
	// sse's handler embeds Raw in its JSON answer; that must not fail.
	if _, err := json.Marshal(map[string]any{"status": s.Status, "score": s.Raw}); err != nil {
		t.Fatalf("decodeScore(%q): Raw does not re-encode: %v", raw, err)
	}
}

func checkErrorMessage(t *testing.T, raw []byte) {
	msg := errorMessage(raw)
	if msg == "" {
		return
	}
	if strings.TrimSpace(msg) == "" {
		t.Fatalf("errorMessage(%q) = %q: blank", raw, msg)
	}
	if !json.Valid(raw) {
		t.Fatalf("errorMessage found %q in invalid JSON %q", msg, raw)
	}
}

// TestDecodeScoreExample pins the documented example: its overall status
// and the whole answer as Raw.
func TestDecodeScoreExample(t *testing.T) {
	s, err := decodeScore([]byte("\n" + scoreExample + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "OK" || string(s.Raw) != scoreExample {
		t.Fatalf("decodeScore(example) = status %q, raw %q", s.Status, s.Raw)
	}
}

// TestDecodeTooDeep feeds every decoder an answer nested past the depth
// encoding/json accepts: each rejects it without panicking.
func TestDecodeTooDeep(t *testing.T) {
	raw := []byte(`{"overall":{"status":"OK"},"deep":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`)
	if _, err := decodeSession(raw); err == nil {
		t.Error("decodeSession accepted it")
	}
	if _, err := decodeOnboardingURL(raw); err == nil {
		t.Error("decodeOnboardingURL accepted it")
	}
	if _, err := decodeStatus(raw); err == nil {
		t.Error("decodeStatus accepted it")
	}
	if s, err := decodeScore(raw); err == nil {
		t.Errorf("decodeScore accepted it: status %q", s.Status)
	}
	if msg := errorMessage(raw); msg != "" {
		t.Errorf("errorMessage found %q", msg)
	}
}
