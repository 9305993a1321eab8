package relay

import "time"

// SignedHeaders returns the webhook-* headers of an attempt to send body as
// the event id at at, signed with each of secrets, as a delivery is.
func SignedHeaders(secrets []string, id string, at time.Time, body []byte) (map[string]string, error) {
	s, err := newSigner(secrets)
	if err != nil {
		return nil, err
	}
	return s.headers(id, at, body), nil
}

// The bodies and ids of the events, for tests outside the package.
var (
	StatusJSON = statusJSON
	EndedJSON  = endedJSON
	NewID      = newID
)
