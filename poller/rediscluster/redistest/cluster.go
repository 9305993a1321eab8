package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of three masters with one replica each, on
// loopback, stopped when the test ends.
type Cluster struct {
	Nodes []*Server // Restart brings a node back with its identity (nodes.conf), empty

	t testing.TB
}

// StartCluster starts six nodes, joins them with redis-cli --cluster
// create, and returns once every node reports cluster_state:ok, sees all
// six nodes healthy, and every master has a replica in sync.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	path := binary(t, "redis-server", "redis-server", "the Redis Cluster test")
	cli := binary(t, "redis-cli", "redis-tools", "the Redis Cluster test")
	c := &Cluster{t: t}
	for _, port := range freePorts(t, 6, true) {
		conf := dataConf + "cluster-enabled yes\ncluster-node-timeout 1000\n" +
			"cluster-config-file nodes.conf\n"
		c.Nodes = append(c.Nodes, startConf(t, "redis-server (cluster node)", path, port, conf))
	}
	logOnFailure(t, c.Nodes...)
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	dieWithParent(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "cluster ready", c.ready)
	return c
}

// ready reports whether every node sees the cluster whole.
func (c *Cluster) ready() error {
	synced := 0
	for _, s := range c.Nodes {
		if err := clusterOK(s); err != nil {
			return err
		}
		nodes, err := clusterNodes(s)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.unhealthy() {
				return fmt.Errorf("%s sees %s as %s", s.Addr, n.addr, n.flags)
			}
		}
		if len(nodes) != len(c.Nodes) {
			return fmt.Errorf("%s knows %d nodes", s.Addr, len(nodes))
		}
		role, err := s.role()
		if err != nil {
			return err
		}
		if role == "slave" {
			if err := inSync(s); err != nil {
				return err
			}
			synced++
		}
	}
	if synced != len(c.Nodes)/2 {
		return fmt.Errorf("%d replicas in sync", synced)
	}
	return nil
}

// URL is go-redis's cluster URL (redis.ParseClusterURL) with the first
// three nodes as seeds.
func (c *Cluster) URL() string {
	return fmt.Sprintf("redis://%s?addr=%s&addr=%s", c.Nodes[0].Addr, c.Nodes[1].Addr, c.Nodes[2].Addr)
}

// Masters returns the addresses of the masters serving slots, sorted, as a
// live node sees them.
func (c *Cluster) Masters() []string {
	c.t.Helper()
	var addrs []string
	for _, n := range c.view() {
		if n.serving() {
			addrs = append(addrs, n.addr)
		}
	}
	slices.Sort(addrs)
	return addrs
}

// MasterOf returns the address of the master serving key's slot, as a
// live node sees it.
func (c *Cluster) MasterOf(key string) string {
	c.t.Helper()
	s := c.live()
	v, err := s.call("CLUSTER", "KEYSLOT", key)
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT: %v", err)
	}
	slot, _ := v.(int64)
	for _, n := range c.view() {
		if n.serving() && n.holds(int(slot)) {
			return n.addr
		}
	}
	c.t.Fatalf("redistest: no master serves slot %d of %q", slot, key)
	return ""
}

// KillMaster SIGKILLs the master at addr and returns when it was killed.
func (c *Cluster) KillMaster(addr string) time.Time {
	c.t.Helper()
	i := slices.IndexFunc(c.Nodes, func(s *Server) bool { return s.Addr == addr })
	if i < 0 {
		c.t.Fatalf("redistest: %s is not a node of this cluster", addr)
	}
	if role, err := c.Nodes[i].role(); err != nil || role != "master" {
		c.t.Fatalf("redistest: %s is not a master: role %q, %v", addr, role, err)
	}
	at := time.Now()
	c.Nodes[i].Stop()
	return at
}

// WaitFailover waits until every live node reports cluster_state:ok and
// sees every slot served by a live master other than old (so old's slots
// have gone to its promoted replica), and returns when that was first seen
// (within 50 ms). After within, it fails the test.
func (c *Cluster) WaitFailover(old string, within time.Duration) time.Time {
	c.t.Helper()
	return waitFor(c.t, within, "failover of "+old, func() error {
		for _, s := range c.Nodes {
			if !s.running() {
				continue
			}
			if err := clusterOK(s); err != nil {
				return err
			}
			nodes, err := clusterNodes(s)
			if err != nil {
				return err
			}
			covered := 0
			for _, n := range nodes {
				if !n.serving() {
					continue
				}
				if n.addr == old || !c.running(n.addr) {
					return fmt.Errorf("%s sees stopped %s serving slots", s.Addr, n.addr)
				}
				covered += n.slotCount()
			}
			if covered != clusterSlots {
				return fmt.Errorf("%s sees %d slots served", s.Addr, covered)
			}
		}
		return nil
	})
}

// running reports whether the node at addr is running.
func (c *Cluster) running(addr string) bool {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s.running()
		}
	}
	return false
}

// live returns a running node, or fails the test.
func (c *Cluster) live() *Server {
	c.t.Helper()
	for _, s := range c.Nodes {
		if s.running() {
			return s
		}
	}
	c.t.Fatal("redistest: every cluster node is stopped")
	return nil
}

// view returns CLUSTER NODES as the first live node that answers sees it.
func (c *Cluster) view() []clusterNode {
	c.t.Helper()
	var err error
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		var nodes []clusterNode
		if nodes, err = clusterNodes(s); err == nil {
			return nodes
		}
	}
	c.t.Fatalf("redistest: no cluster node answered CLUSTER NODES: %v", err)
	return nil
}

// clusterOK reports whether s says cluster_state:ok.
func clusterOK(s *Server) error {
	v, err := s.Do("CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if !strings.Contains(v, "cluster_state:ok") {
		return fmt.Errorf("%s: cluster state not ok", s.Addr)
	}
	return nil
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	addr  string   // host:port, without the bus port
	flags string   // "myself,master", "slave", "master,fail"...
	slots [][2]int // inclusive ranges served
}

// clusterNodes asks s for CLUSTER NODES.
func clusterNodes(s *Server) ([]clusterNode, error) {
	v, err := s.Do("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	return parseClusterNodes(v)
}

func parseClusterNodes(v string) ([]clusterNode, error) {
	var nodes []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(v), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("redistest: CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := clusterNode{addr: addr, flags: f[2]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being migrated
				continue
			}
			lo, hi, found := strings.Cut(r, "-")
			if !found {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("redistest: CLUSTER NODES slots %q", r)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func (n clusterNode) has(flag string) bool {
	return slices.Contains(strings.Split(n.flags, ","), flag)
}

// unhealthy reports whether the node is failing or not yet joined.
func (n clusterNode) unhealthy() bool {
	return n.has("fail") || n.has("fail?") || n.has("handshake") || n.has("noaddr")
}

// serving reports whether the node is a healthy master with slots.
func (n clusterNode) serving() bool {
	return n.has("master") && !n.unhealthy() && len(n.slots) > 0
}

func (n clusterNode) holds(slot int) bool {
	for _, r := range n.slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

func (n clusterNode) slotCount() int {
	c := 0
	for _, r := range n.slots {
		c += r[1] - r[0] + 1
	}
	return c
}

// Reshard moves slots hash slots, keys included, from the master at from
// to the master at to (redis-cli --cluster reshard: MIGRATE, clients
// answered ASK, then MOVED), and returns once every node sees the cluster
// whole again.
func (c *Cluster) Reshard(from, to string, slots int) {
	c.t.Helper()
	id := func(addr string) string {
		i := slices.IndexFunc(c.Nodes, func(s *Server) bool { return s.Addr == addr })
		if i < 0 {
			c.t.Fatalf("redistest: %s is not a node of this cluster", addr)
		}
		v, err := c.Nodes[i].Do("CLUSTER", "MYID")
		if err != nil {
			c.t.Fatalf("redistest: CLUSTER MYID of %s: %v", addr, err)
		}
		return strings.TrimSpace(v)
	}
	cli := binary(c.t, "redis-cli", "redis-tools", "the Redis Cluster test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "--cluster", "reshard", to, "--cluster-from", id(from), "--cluster-to", id(to),
		"--cluster-slots", strconv.Itoa(slots), "--cluster-yes", "--cluster-pipeline", "100")
	dieWithParent(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("redistest: redis-cli --cluster reshard: %v\n%s", err, out)
	}
	waitFor(c.t, 30*time.Second, "cluster whole after the reshard", c.ready)
}
