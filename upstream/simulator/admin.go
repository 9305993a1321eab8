package simulator

import (
	"crypto/subtle"
	"net/http"
	"time"
)

// adminLogin is what POST /executive/log-in takes.
type adminLogin struct {
	email, password string
	ttl             time.Duration // lifetime of the admin tokens it answers
}

// logIn answers an executive log-in with a new admin token that expires
// after the configured lifetime, as the upstream does (24 h there).
func (s *Simulator) logIn(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeBody(w, r, &body, false); err != nil {
		writeError(w, r, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	a := s.executive
	if a.email == "" || subtle.ConstantTimeCompare([]byte(body.Email), []byte(a.email)) != 1 ||
		subtle.ConstantTimeCompare([]byte(body.Password), []byte(a.password)) != 1 {
		writeError(w, r, http.StatusUnauthorized, "invalid email or password")
		return
	}
	token := randomToken()
	s.mu.Lock()
	now := time.Now()
	for t, exp := range s.adminTokens { // forget expired tokens; log-ins are rare
		if now.After(exp) {
			delete(s.adminTokens, t)
		}
	}
	s.adminTokens[token] = now.Add(a.ttl)
	s.mu.Unlock()
	s.log.Info("simulator: admin logged in", "ttl", a.ttl)
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// adminTokenRefused says why an admin token is refused, "" when it is
// accepted: the fixed admin token, or one a log-in answered that has not
// expired.
func (s *Simulator) adminTokenRefused(token string) string {
	if token == "" {
		return "invalid or missing admin token"
	}
	if s.adminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.adminToken)) == 1 {
		return ""
	}
	s.mu.Lock()
	exp, issued := s.adminTokens[token]
	s.mu.Unlock()
	switch {
	case !issued:
		return "invalid or missing admin token"
	case time.Now().After(exp):
		return "admin token expired"
	}
	return ""
}
