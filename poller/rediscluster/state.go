package rediscluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/poller"
	"github.com/pushgate/pushgate/poller/flow"
)

// This file holds the shared state of an interview: its changes, stored
// by compare-and-set and announced on the channel, and its session token,
// stored sealed (seal.go).

// commitScript stores a change on top of prev, the last change the caller
// knows is stored (the history's tail, which the conflict answer shows), keeps the last changes, and publishes it; it answers 1,
// or the stored changes when the stored last one is another (the caller
// missed some, or numbered its own while Redis was out of reach). With no
// history left (expired, or a Redis that restarted empty) nothing counts as
// stored.
//
// KEYS: state, history. ARGV: prev, seq, history entry, pushed (0/1), now
// in ms, retention in ms, channel, message, history length.
var commitScript = redis.NewScript(`
local last = redis.call('LINDEX', KEYS[2], -1)
if last and tonumber(cjson.decode(last).q) ~= tonumber(ARGV[1]) then
  return redis.call('LRANGE', KEYS[2], 0, -1)
end
redis.call('HSET', KEYS[1], 'seq', ARGV[2])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'pushed', ARGV[5]) end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[9]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1`)

// entry is one change in the history list.
type entry struct {
	Status string `json:"s"`
	Seq    uint64 `json:"q"`
	End    string `json:"e,omitempty"`
}

// message is one change on the channel.
type message struct {
	Node   string `json:"n"`
	ID     string `json:"i"`
	Status string `json:"s"`
	Seq    uint64 `json:"q"`
	End    string `json:"e,omitempty"`
	Prev   uint64 `json:"p,omitempty"`
	Pushed bool   `json:"w,omitempty"`
}

// Commit stores next on top of prev, and publishes it.
func (n *Node) Commit(ctx context.Context, prev uint64, next flow.Update, pushed bool) ([]flow.Update, error) {
	if n.down.Load() {
		return nil, ErrUnavailable
	}
	e, _ := json.Marshal(entry{Status: next.Status, Seq: next.Seq, End: next.End})
	msg, _ := json.Marshal(message{Node: n.id, ID: next.InterviewID, Status: next.Status, Seq: next.Seq, End: next.End, Prev: prev, Pushed: pushed})
	flag := "0"
	if pushed {
		flag = "1"
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	keys := []string{n.key(next.InterviewID, "state"), n.key(next.InterviewID, "history")}
	res, err := commitScript.Run(ctx, n.rdb, keys, prev, next.Seq, e, flag, time.Now().UnixMilli(),
		n.cfg.Retention.Milliseconds(), n.channel, msg, flow.HistoryLen).Result()
	if err != nil {
		n.fail(err)
		n.metrics.commit("failed")
		return nil, err
	}
	list, ok := res.([]any)
	if !ok {
		n.metrics.commit("stored")
		return nil, nil
	}
	n.metrics.commit("conflict")
	stored := decodeHistory(next.InterviewID, list)
	if len(stored) == 0 {
		return nil, fmt.Errorf("rediscluster: interview %s: a change is stored but its history cannot be read", next.InterviewID)
	}
	return stored, nil
}

// Load reads the interview's shared state.
func (n *Node) Load(ctx context.Context, interviewID string) (poller.Shared, error) {
	if n.down.Load() {
		return poller.Shared{}, ErrUnavailable
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	pipe := n.rdb.Pipeline()
	fields := pipe.HMGet(ctx, n.key(interviewID, "state"), "token", "pushed")
	history := pipe.LRange(ctx, n.key(interviewID, "history"), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		n.fail(err)
		return poller.Shared{}, err
	}
	var sh poller.Shared
	vals := fields.Val()
	if len(vals) == 2 {
		sh.Token = n.openToken(interviewID, vals[0])
		if ms, err := strconv.ParseInt(fmt.Sprint(vals[1]), 10, 64); err == nil {
			sh.PushedAt = time.UnixMilli(ms)
		}
	}
	items := make([]any, len(history.Val()))
	for i, s := range history.Val() {
		items[i] = s
	}
	sh.History = decodeHistory(interviewID, items)
	return sh, nil
}

// Share stores the interview's upstream session token, sealed under the
// current secret.
func (n *Node) Share(ctx context.Context, interviewID, sessionToken string) error {
	if n.down.Load() {
		return ErrUnavailable
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	key := n.key(interviewID, "state")
	pipe := n.rdb.TxPipeline()
	pipe.HSet(ctx, key, "token", n.sealer.seal(interviewID, sessionToken))
	pipe.PExpire(ctx, key, n.cfg.Retention)
	pipe.PExpire(ctx, n.key(interviewID, "history"), n.cfg.Retention) // the two expire together
	if _, err := pipe.Exec(ctx); err != nil {
		n.fail(err)
		return err
	}
	return nil
}

// decodeHistory reads history entries, skipping any it cannot parse.
func decodeHistory(interviewID string, items []any) []flow.Update {
	out := make([]flow.Update, 0, len(items))
	for _, it := range items {
		s, _ := it.(string)
		var e entry
		if json.Unmarshal([]byte(s), &e) != nil || e.Seq == 0 {
			continue
		}
		out = append(out, flow.Update{InterviewID: interviewID, Status: e.Status, Seq: e.Seq, End: e.End})
	}
	return out
}
