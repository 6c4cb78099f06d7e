package monitor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/clock"
)

// topIDs are ids whose natural order differs from their byte order in
// every way natsort knows: numbers of different lengths (web-2, web-10),
// leading zeros (web-02, web-002), numbers past uint64, dotted and nested
// runs, ids that are only a number.
func topIDs() []string {
	var ids []string
	for i := range 300 {
		ids = append(ids, "web-"+strconv.Itoa(i))
	}
	for i := range 60 {
		ids = append(ids, fmt.Sprintf("web-%02d", i), fmt.Sprintf("web-%03d", i))
	}
	for i := range 200 {
		ids = append(ids, "db-"+strconv.Itoa(i), "web-10."+strconv.Itoa(i%40)+"-"+strconv.Itoa(i/40))
	}
	ids = append(ids, "9", "10", "010", "a", "A", "web-", "web-2-1", "web-99999999999999999999",
		"web-100000000000000000000", "web.1", "z")
	// Keep only the first of each id: the fixed-width ones repeat some.
	slices.Sort(ids)
	return slices.Compact(ids)
}

// topMonitor is a Monitor over a table of many peers in every state,
// whose ids beat in a shuffled order so that the table's own order tells
// nothing about list order. Some peers carry labels.
func topMonitor(t *testing.T) *Monitor {
	t.Helper()
	h := newHarness(t, nil)
	ids := topIDs()
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	// fate, by position in the shuffled list: the round of a peer's last
	// beat, and whether that beat says goodbye.
	const rounds = 10
	last := func(i int) (round int, goodbye bool) {
		switch i % 8 {
		case 0, 1:
			return 2, false // dead by the end
		case 2:
			return rounds - 2, false // suspect by the end
		case 3:
			return 4, true // left
		}
		return rounds, false // alive
	}
	seq := make([]uint64, len(ids))
	for r := 0; r <= rounds; r++ {
		for i, id := range ids {
			if lr, bye := last(i); r <= lr {
				seq[i]++
				b := rawBeat(id, "boot", seq[i], time.Second, bye && r == lr)
				if i%5 == 0 {
					b.Labels = []byte(`{"zone":"z` + strconv.Itoa(i%3) + `","rack":"r1"}`)
				}
				if rej := h.tab.observe(id, b, h.now); rej != "" {
					t.Fatalf("round %d: beat of %s rejected: %s", r, id, rej)
				}
			}
		}
		if r < rounds {
			h.advance(time.Second)
		}
	}
	// Alive peers last beat 0.5s ago, suspect ones 2.5s ago.
	h.advance(500 * time.Millisecond)
	if got := h.tab.peers.len(); got != len(ids) {
		t.Fatalf("table holds %d peers, want %d", got, len(ids))
	}
	for _, st := range States() {
		if h.tab.st.byState[st] < 50 {
			t.Fatalf("only %d peers %v; counts %v", h.tab.st.byState[st], st, h.tab.st.byState)
		}
	}
	m := &Monitor{cfg: h.cfg, tab: h.tab}
	m.cfg.Clock = clock.NewFake(h.now)
	return m
}

// fullCopyTop is what the HTTP API did before TopPeers: every peer's
// snapshot, filtered, sorted, cut at limit.
func fullCopyTop(m *Monitor, limit int, states []State) ([]PeerInfo, int) {
	ps := m.Peers()
	if len(states) > 0 {
		ps = slices.DeleteFunc(ps, func(p PeerInfo) bool { return !slices.Contains(states, p.State) })
	}
	SortPeers(ps)
	matched := len(ps)
	return ps[:min(max(limit, 0), len(ps))], matched
}

// TestTopPeersIsTheFullCopyCut: for every filter and limit, TopPeers
// returns exactly the rows, in the same order and with the same content,
// as snapshotting every peer, filtering, sorting and cutting, and counts
// the same matches.
func TestTopPeersIsTheFullCopyCut(t *testing.T) {
	m := topMonitor(t)
	n := m.tab.peers.len()
	filters := [][]State{
		nil,
		{StateDead},
		{StateSuspect},
		{StateAlive},
		{StateLeft},
		{StateSuspect, StateDead},
		{StateLeft, StateAlive},
		{StateAlive, StateDead, StateLeft, StateSuspect},
		{StateDead, StateDead},
		{StateUnknown},
		{State(9), State(200)},
	}
	for _, states := range filters {
		for _, limit := range []int{math.MinInt, -1, 0, 1, 2, 7, 100, 500, n - 1, n, n + 5, math.MaxInt} {
			t.Run(fmt.Sprintf("state=%v/limit=%d", states, limit), func(t *testing.T) {
				got, gotMatched := m.TopPeers(limit, states...)
				want, wantMatched := fullCopyTop(m, limit, states)
				if gotMatched != wantMatched {
					t.Errorf("matched %d, want %d", gotMatched, wantMatched)
				}
				if len(got) != len(want) {
					t.Fatalf("%d peers, want %d", len(got), len(want))
				}
				for i := range want {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestTopPeersEmpty: an empty table matches nothing whatever the limit.
func TestTopPeersEmpty(t *testing.T) {
	h := newHarness(t, nil)
	m := &Monitor{cfg: h.cfg, tab: h.tab}
	m.cfg.Clock = clock.NewFake(h.now)
	for _, limit := range []int{-1, 0, 500} {
		got, matched := m.TopPeers(limit)
		if len(got) != 0 || matched != 0 {
			t.Errorf("TopPeers(%d) = %v, %d; want [], 0", limit, got, matched)
		}
	}
}

// TestTopPeersSharedPrefix: when a fleet's ids share more than a key
// holds, keys leave the shared prefix out; ids that shorten it (another
// service, another region) have every key taken again, and at every step
// the first rows are those of the full copy. All peers are alive, so only
// ids order them.
func TestTopPeersSharedPrefix(t *testing.T) {
	h := newHarness(t, nil)
	m := &Monitor{cfg: h.cfg, tab: h.tab}
	m.cfg.Clock = clock.NewFake(h.now)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, stage := range []struct {
		format string
		n      int
		prefix string // the table's key prefix after the stage
	}{
		{"prod-eu-west-1-web-%d", 1000, "prod-eu-west-1-web-"},
		{"prod-eu-west-1-web-%04d", 100, "prod-eu-west-1-web-"},
		{"prod-eu-west-1-db-%d", 300, "prod-eu-west-1-"},
		{"prod-eu-west-10-web-%d", 50, "prod-eu-west-"},
		{"web-%d", 50, ""},
	} {
		ids := make([]string, stage.n)
		for i := range ids {
			ids[i] = fmt.Sprintf(stage.format, i)
		}
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		for _, id := range ids {
			if rej := h.beat(id, "boot", time.Second); rej != "" {
				t.Fatalf("beat of %s rejected: %s", id, rej)
			}
		}
		if got := h.tab.peers.keyPrefix; got != stage.prefix {
			t.Errorf("after %q: key prefix %q, want %q", stage.format, got, stage.prefix)
		}
		n := h.tab.peers.len()
		for _, limit := range []int{1, 10, 500, n} {
			got, gotMatched := m.TopPeers(limit)
			want, wantMatched := fullCopyTop(m, limit, nil)
			if gotMatched != wantMatched || !reflect.DeepEqual(got, want) {
				t.Fatalf("after %q, limit %d: TopPeers differs from the full copy (matched %d, want %d)",
					stage.format, limit, gotMatched, wantMatched)
			}
		}
	}
}
