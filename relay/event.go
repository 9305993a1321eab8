package relay

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"strconv"
	"time"
)

// Kinds of events, as Config.Kinds names them.
const (
	// KindUpstream is a webhook the upstream sent pushgate, relayed with
	// its body byte for byte.
	KindUpstream = "upstream"
	// KindStatus is session.status: a change of an interview's status.
	KindStatus = "status"
	// KindEnded is session.ended: the end of a session, once per session.
	KindEnded = "ended"
)

// Kinds lists every kind, in the order the docs give them.
var Kinds = []string{KindUpstream, KindStatus, KindEnded}

// Reasons a session ended (the reason of session.ended).
const (
	ReasonFinished = "finished"  // the flow finished: verdict follows the score
	ReasonExpired  = "expired"   // the upstream reported EXPIRED, or its token stopped working
	ReasonNotFound = "not_found" // the upstream no longer knows the session
)

// Delivery is one event on its way to one target URL. Its ID, the
// webhook-id header, is the same on every retry, on every node and for
// every target, so a receiver drops a duplicate by it.
type Delivery struct {
	ID          string    `json:"id"`
	Target      string    `json:"target"`      // the URL it goes to
	InterviewID string    `json:"interviewId"` // with Target, its lane
	Kind        string    `json:"kind"`
	Body        []byte    `json:"body,omitempty"` // what is sent; nil while End waits for its verdict
	End         *End      `json:"end,omitempty"`  // a session.ended whose body is made at its first attempt
	Created     time.Time `json:"created"`
	Since       time.Time `json:"since,omitzero"` // retried since: Created, or its last redelivery
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"lastError,omitempty"`
	FailedAt    time.Time `json:"failedAt,omitzero"`
}

// lane names the deliveries that must reach their target in order.
func (d Delivery) lane() string { return d.Target + "\n" + d.InterviewID }

// since is when d's retries began: when it was made, or last redelivered.
// MaxAge counts from it, and the queue's oldest age too.
func (d Delivery) since() time.Time { return cmp.Or(d.Since, d.Created) }

// redelivered is d put back in its queue at now: attempts counted again,
// and MaxAge from now. Its last error stays, until the next one.
func (d Delivery) redelivered(now time.Time) Delivery {
	d.Attempts, d.FailedAt, d.Since = 0, time.Time{}, now
	return d
}

// End is what a session.ended body is made of, apart from the verdict,
// which is read when the event is first sent (the score is read once the
// flow finished).
type End struct {
	Reason     string `json:"reason"`
	Status     string `json:"onboardingStatus"`
	ExternalID string `json:"externalId,omitempty"`
}

// statusBody is the body of session.status.
type statusBody struct {
	Type        string    `json:"type"`
	InterviewID string    `json:"interviewId"`
	Status      string    `json:"onboardingStatus"`
	Seq         uint64    `json:"seq"`
	ExternalID  string    `json:"externalId,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
}

// endedBody is the body of session.ended. Verdict is null when the
// session did not finish, or its score could not be read.
type endedBody struct {
	Type        string    `json:"type"`
	InterviewID string    `json:"interviewId"`
	Reason      string    `json:"reason"`
	Status      string    `json:"onboardingStatus"`
	Verdict     *string   `json:"verdict"`
	ExternalID  string    `json:"externalId,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
}

func statusJSON(interviewID, status string, seq uint64, externalID string, at time.Time) []byte {
	return mustJSON(statusBody{"session.status", interviewID, status, seq, externalID, at.UTC()})
}

func endedJSON(interviewID string, e End, verdict string, at time.Time) []byte {
	b := endedBody{Type: "session.ended", InterviewID: interviewID, Reason: e.Reason, Status: e.Status, ExternalID: e.ExternalID, Timestamp: at.UTC()}
	if verdict != "" {
		b.Verdict = &verdict
	}
	return mustJSON(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("relay: encoding an event: " + err.Error()) // strings, ints and times always encode
	}
	return b
}

// idEncoding spells ids: letters and digits, safe in headers and paths.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID is the id of an event heard once (an upstream webhook): random.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	return "msg_" + idEncoding.EncodeToString(b)
}

// stableID is the id of an event derived from what it is (a change
// numbered seq, a session's end), not drawn at random: made again (by
// another node observing the same committed change, or after a restart),
// it has the same id, and the Redis queue takes it once. Two nodes that
// each numbered a status alone while their cluster was out of reach give
// it two seqs, so two ids; a session's end has one id whoever makes it.
func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return "msg_" + idEncoding.EncodeToString(h.Sum(nil)[:16])
}
