package redistest

import (
	"reflect"
	"testing"
)

func TestParseClusterNodes(t *testing.T) {
	const reply = `e7d1 127.0.0.1:30004@40004 slave 67ed 0 1700000000000 4 connected
67ed 127.0.0.1:30001@40001 myself,master - 0 1700000000000 1 connected 0-5460
292f 127.0.0.1:30002@40002,redis-2 master - 0 1700000000000 2 connected 5461-10922 [10923->-6ec2]
6ec2 127.0.0.1:30003@40003 master,fail - 1700000000000 1700000000000 3 disconnected
824f 127.0.0.1:30006@40006 master - 0 1700000000000 7 connected 10923-16383
`
	nodes, err := parseClusterNodes(reply)
	if err != nil {
		t.Fatal(err)
	}
	want := []clusterNode{
		{addr: "127.0.0.1:30004", flags: "slave"},
		{addr: "127.0.0.1:30001", flags: "myself,master", slots: [][2]int{{0, 5460}}},
		{addr: "127.0.0.1:30002", flags: "master", slots: [][2]int{{5461, 10922}}},
		{addr: "127.0.0.1:30003", flags: "master,fail"},
		{addr: "127.0.0.1:30006", flags: "master", slots: [][2]int{{10923, 16383}}},
	}
	if !reflect.DeepEqual(nodes, want) {
		t.Fatalf("parsed %+v\nwant %+v", nodes, want)
	}
	tests := []struct {
		node      int
		serving   bool
		slot      int
		holds     bool
		slotCount int
		unhealthy bool
	}{
		{0, false, 0, false, 0, false},
		{1, true, 5460, true, 5461, false},
		{2, true, 5460, false, 5462, false},
		{3, false, 10923, false, 0, true},
		{4, true, 16383, true, 5461, false},
	}
	for _, tc := range tests {
		n := nodes[tc.node]
		if n.serving() != tc.serving || n.holds(tc.slot) != tc.holds || n.slotCount() != tc.slotCount || n.unhealthy() != tc.unhealthy {
			t.Errorf("%s: serving %v, holds(%d) %v, %d slots, unhealthy %v; want %v, %v, %d, %v", n.addr,
				n.serving(), tc.slot, n.holds(tc.slot), n.slotCount(), n.unhealthy(), tc.serving, tc.holds, tc.slotCount, tc.unhealthy)
		}
	}
}
