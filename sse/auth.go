package sse

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

var interviewIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validInterviewID(id string) bool { return interviewIDPattern.MatchString(id) }

// authorized validates the interviewId parameter and the caller's token for
// it, and returns the id.
func (h *Handler) authorized(r *http.Request) (string, error) {
	ids := r.URL.Query()["interviewId"]
	if len(ids) > 1 {
		return "", errorf(http.StatusBadRequest, "interviewId given more than once")
	}
	if len(ids) == 0 || ids[0] == "" {
		return "", errorf(http.StatusBadRequest, "interviewId query parameter is required")
	}
	id := ids[0]
	if !validInterviewID(id) {
		return "", errorf(http.StatusBadRequest, "interviewId must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")
	}
	return id, h.cfg.Tokens.Verify(requestToken(r, id), id)
}

// requestToken finds the caller's token: X-Token, then Authorization:
// Bearer, then the interview's cookie. Tokens in the URL are not accepted.
func requestToken(r *http.Request, interviewID string) string {
	if t := r.Header.Get("X-Token"); t != "" {
		return t
	}
	if t, ok := bearerToken(r); ok {
		return t
	}
	if c, err := r.Cookie(CookieName(interviewID)); err == nil {
		return c.Value
	}
	return ""
}

// bearerToken returns the credentials of an "Authorization: Bearer"
// header; the scheme's name is matched without regard to case (RFC 9110).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// CookieName is the name of the cookie that carries the browser's token for
// one interview: scoped to it, so several sessions in several tabs all keep
// working.
func CookieName(interviewID string) string { return "pushgate_" + interviewID }

// setSessionCookie hands the browser its token as an HttpOnly cookie too.
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, interviewID, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName(interviewID),
		Value:    token,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
		HttpOnly: true,
		Secure:   h.cfg.SecureCookie || h.overTLS(r),
		SameSite: http.SameSiteStrictMode,
	})
}
