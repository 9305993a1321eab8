package poller

import (
	"context"
	"time"
)

// Prober is an optional interface of a Source: Probe makes one cheap call
// that needs no session, only to learn whether the upstream answers; nil
// means it does. A Prober should also be a HealthChecker whose Healthy
// counts the probe's outcome: the Manager then probes so that Ready
// follows the upstream both ways without any traffic, and when a probe
// sees the upstream back after a failed one, it reads every interview at
// once (see recover).
type Prober interface {
	Probe(ctx context.Context) error
}

// watchUpstream is the Manager's one prober goroutine, run while it is
// open when its Source is a Prober. Every ProbeInterval it starts a probe
// if the node has reason to doubt the upstream, or no news of it (see
// health.due); a node whose status calls succeed never probes. Each probe
// runs in a goroutine of its own, under CallTimeout like any call, so a
// probe hung on a dead upstream delays neither the next one nor the
// recovery it would see: one probe starts per interval, whatever the
// earlier ones do, and a recovery cancels those still hanging.
func (m *Manager) watchUpstream(p Prober) {
	defer m.wg.Done()
	m.tick(m.cfg.ProbeInterval, func(now time.Time) {
		if m.health.due(m.Ready() != nil, now, m.cfg.ProbeInterval) {
			m.wg.Add(1) // this goroutine is counted: Close has not returned
			go m.probe(p)
		}
	})
}

// probe makes one probe, under the rate ceiling like every upstream call
// (but not under MaxConcurrent: calls stuck on a dead upstream may hold
// every slot, and the probe is what ends that), and takes its verdict.
func (m *Manager) probe(p Prober) {
	defer m.wg.Done()
	calls := m.health.generation()
	if m.ceiling != nil {
		wait, cancelWait := context.WithTimeout(calls, m.cfg.CallTimeout)
		err := m.ceiling.Wait(wait)
		cancelWait()
		if err != nil {
			return // no turn within the timeout: no call, no verdict
		}
	}
	// The call gets a CallTimeout of its own: a wait never eats its time.
	ctx, cancel := context.WithTimeout(calls, m.cfg.CallTimeout)
	defer cancel()
	sent := time.Now()
	done := m.health.sent(sent)
	err := p.Probe(ctx)
	done()
	if err != nil && calls.Err() != nil {
		return // cut by a recovery, or the Manager closed: no verdict
	}
	m.probed(sent, err)
}
