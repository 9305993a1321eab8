package redistest

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// MasterName is the name the sentinels of StartSentinel monitor their
// master under.
const MasterName = "mymaster"

// sentinelConf is each sentinel's configuration after port, bind and dir;
// %d is the master's port. Quorum 2 of 3; a master silent for a second is
// down.
const sentinelConf = `sentinel monitor ` + MasterName + ` 127.0.0.1 %d 2
sentinel down-after-milliseconds ` + MasterName + ` 1000
sentinel failover-timeout ` + MasterName + ` 5000
sentinel parallel-syncs ` + MasterName + ` 1
`

// Sentinel is a master, its replica and three sentinels watching them
// (quorum 2), all on loopback, stopped when the test ends.
type Sentinel struct {
	Data      []*Server // Data[0] started as the master, Data[1] as its replica
	Sentinels []*Server // Restart keeps what a sentinel learnt (its rewritten config)

	t testing.TB
}

// quorum is how many sentinels must agree on a master.
const quorum = 2

// StartSentinel starts the topology and returns once the replica is in
// sync and every sentinel knows the master, the replica and the other two
// sentinels.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	path := binary(t, "redis-server", "redis-server", "the Redis Sentinel test")
	ports := freePorts(t, 5, false)
	sn := &Sentinel{t: t}
	master := startConf(t, "redis-server (master)", path, ports[0], dataConf)
	replica := startConf(t, "redis-server (replica)", path, ports[1],
		dataConf+fmt.Sprintf("replicaof 127.0.0.1 %d\n", ports[0]))
	sn.Data = []*Server{master, replica}
	logOnFailure(t, sn.Data...)
	waitFor(t, 20*time.Second, "replica in sync", func() error { return inSync(replica) })
	for _, port := range ports[2:] {
		s := startConf(t, "sentinel", path, port, fmt.Sprintf(sentinelConf, ports[0]), "--sentinel")
		sn.Sentinels = append(sn.Sentinels, s)
	}
	logOnFailure(t, sn.Sentinels...)
	waitFor(t, 30*time.Second, "sentinels ready", func() error {
		for _, s := range sn.Sentinels {
			if err := sn.knowsAll(s); err != nil {
				return fmt.Errorf("sentinel %s: %w", s.Addr, err)
			}
		}
		return nil
	})
	return sn
}

// inSync reports whether a replica's link to its master is up.
func inSync(replica *Server) error {
	info, err := replica.info("replication")
	if err != nil {
		return err
	}
	if info["master_link_status"] != "up" {
		return fmt.Errorf("%s: master_link_status %q", replica.Addr, info["master_link_status"])
	}
	return nil
}

// knowsAll reports whether sentinel s sees the master up, the replica
// linked to it and the two other sentinels.
func (sn *Sentinel) knowsAll(s *Server) error {
	v, err := s.call("SENTINEL", "MASTER", MasterName)
	if err != nil {
		return err
	}
	m := fields(v)
	if m["flags"] != "master" || m["num-other-sentinels"] != "2" {
		return fmt.Errorf("master flags %q, %s other sentinels", m["flags"], m["num-other-sentinels"])
	}
	v, err = s.call("SENTINEL", "REPLICAS", MasterName)
	if err != nil {
		return err
	}
	replicas, _ := v.([]any)
	for _, r := range replicas {
		f := fields(r)
		if f["name"] == sn.Data[1].Addr && f["flags"] == "slave" && f["master-link-status"] == "ok" {
			return nil
		}
	}
	return fmt.Errorf("replica %s not known in sync: %v", sn.Data[1].Addr, v)
}

// URL is go-redis's failover URL (redis.ParseFailoverURL) of the
// topology: the first sentinel in the host, the others as addr
// parameters, and the master's name.
func (sn *Sentinel) URL(db int) string {
	u := fmt.Sprintf("redis://%s/%d?master_name=%s", sn.Sentinels[0].Addr, db, MasterName)
	for _, s := range sn.Sentinels[1:] {
		u += "&addr=" + s.Addr
	}
	return u
}

// MasterAddr asks the sentinels, in turn until one answers, where the
// master is.
func (sn *Sentinel) MasterAddr() string {
	sn.t.Helper()
	var err error
	for _, s := range sn.Sentinels {
		var addr string
		if addr, err = masterAddr(s); err == nil {
			return addr
		}
	}
	sn.t.Fatalf("redistest: no sentinel told the master's address: %v", err)
	return ""
}

// masterAddr asks one sentinel where the master is.
func masterAddr(s *Server) (string, error) {
	v, err := s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName)
	if err != nil {
		return "", err
	}
	a, _ := v.([]any)
	if len(a) != 2 {
		return "", fmt.Errorf("redistest: sentinel %s answered %v", s.Addr, v)
	}
	return net.JoinHostPort(text(a[0]), text(a[1])), nil
}

// KillMaster SIGKILLs the server the sentinels call master, and returns
// its address and when it was killed.
func (sn *Sentinel) KillMaster() (killed string, at time.Time) {
	sn.t.Helper()
	killed = sn.MasterAddr()
	s := sn.data(killed)
	at = time.Now()
	s.Stop()
	return killed, at
}

// WaitPromoted waits until a quorum of sentinels name a master other than
// old and that server answers ROLE as a master; it returns the new
// master's address and when the promotion was first seen (within 50 ms of
// the last sentinel's switch). After within, it fails the test.
func (sn *Sentinel) WaitPromoted(old string, within time.Duration) (addr string, at time.Time) {
	sn.t.Helper()
	at = waitFor(sn.t, within, "promotion in place of "+old, func() error {
		votes := map[string]int{}
		views := map[string]string{}
		for _, s := range sn.Sentinels {
			a, err := masterAddr(s)
			if err != nil {
				views[s.Addr] = err.Error()
				continue
			}
			views[s.Addr] = a
			if a != old {
				votes[a]++
			}
		}
		for a, n := range votes {
			if n < quorum {
				continue
			}
			s := sn.lookup(a)
			if s == nil {
				return fmt.Errorf("sentinels name %s, not a server of this topology", a)
			}
			if role, err := s.role(); err != nil || role != "master" {
				return fmt.Errorf("sentinels name %s, whose role is %q (%v)", a, role, err)
			}
			addr = a
			return nil
		}
		return fmt.Errorf("sentinels name %v", views)
	})
	return addr, at
}

// data returns the data server at addr, or fails the test.
func (sn *Sentinel) data(addr string) *Server {
	sn.t.Helper()
	s := sn.lookup(addr)
	if s == nil {
		sn.t.Fatalf("redistest: %s is not a data server of this topology", addr)
	}
	return s
}

func (sn *Sentinel) lookup(addr string) *Server {
	for _, s := range sn.Data {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}
