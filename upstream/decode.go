package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The decoders below turn the body of a 2xx answer into a result. They are
// pure, so they are fuzzed on their own (FuzzDecode); the Client's methods
// wrap their errors with malformed. Each documents what a nil error
// promises about its result.

// decodeSession decodes an answer of POST /omni/start. On success
// InterviewID and Token are non-empty.
func decodeSession(raw []byte) (Session, error) {
	var ans sessionJSON
	if err := json.Unmarshal(raw, &ans); err != nil {
		return Session{}, err
	}
	if ans.InterviewID == "" || ans.Token == "" {
		return Session{}, errors.New("answer lacks interviewId or token")
	}
	return Session(ans), nil
}

// decodeOnboardingURL decodes an answer of GET /0/omni/onboarding-url. On
// success the URL is absolute, http or https, with a host; it is returned as
// the upstream spelled it.
func decodeOnboardingURL(raw []byte) (string, error) {
	var ans struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return "", err
	}
	u, err := url.Parse(ans.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("answer lacks an absolute http(s) url")
	}
	return ans.URL, nil
}

// decodeLogIn decodes an answer of POST /executive/log-in. On success the
// admin token is non-empty.
func decodeLogIn(raw []byte) (string, error) {
	var ans struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return "", err
	}
	if ans.Token == "" {
		return "", errors.New("answer lacks token")
	}
	return ans.Token, nil
}

// decodeStatus decodes an answer of the status endpoints. On success the
// status is non-empty; unknown values pass through.
func decodeStatus(raw []byte) (string, error) {
	var ans struct {
		Status *string `json:"onboardingStatus"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return "", err
	}
	if ans.Status == nil || *ans.Status == "" {
		return "", errors.New("answer lacks onboardingStatus")
	}
	return *ans.Status, nil
}

// decodeScore decodes an answer of the score endpoints. On success Raw is
// the answer without surrounding white space, a valid JSON object; it shares
// raw's memory.
func decodeScore(raw []byte) (Score, error) {
	raw = bytes.TrimSpace(raw)
	var ans struct {
		Overall *struct {
			Status *string `json:"status"`
		} `json:"overall"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return Score{}, err
	}
	if len(raw) == 0 || raw[0] != '{' {
		return Score{}, errors.New("answer is not a JSON object")
	}
	if !utf8.Valid(raw) {
		// Raw is passed on to browsers as is: it must be valid JSON text.
		return Score{}, errors.New("answer is not valid UTF-8")
	}
	s := Score{Raw: json.RawMessage(raw)}
	if ans.Overall != nil && ans.Overall.Status != nil {
		s.Status = *ans.Overall.Status
	}
	return s, nil
}

// errorMessage returns the "message" (else "error") field of an upstream
// error body, or "".
func errorMessage(body []byte) string {
	var e struct {
		Message any `json:"message"`
		Error   any `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	for _, v := range []any{e.Message, e.Error} {
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
