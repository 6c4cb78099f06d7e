package monitor

import (
	"slices"
	"strconv"
	"testing"
)

// TestProbationRebuiltAfterColdStart: once a large cold start has moved
// through probation, the few ids left there get a fresh, small LRU (the
// old map's buckets are not kept), in the same recency order, and nothing
// is reported as evicted.
func TestProbationRebuiltAfterColdStart(t *testing.T) {
	const n = 4096
	evicted := 0
	pt := newPeerTable(n, func(*peer) { evicted++ })
	peers := make([]*peer, n)
	for i := range peers {
		peers[i] = &peer{id: "p" + strconv.Itoa(i)}
		pt.add(peers[i], false)
	}
	old := pt.fresh
	// Everyone but every 512th peer beats a second time.
	var stay []string
	for i, p := range peers {
		if i%512 == 0 {
			stay = append(stay, p.id)
			continue
		}
		pt.promote(p)
	}
	if pt.fresh == old {
		t.Fatal("probation still holds the map sized for the whole cold start")
	}
	if got := pt.fresh.Keys(); !slices.Equal(got, stay) {
		t.Fatalf("probation holds %v, want %v in the same order", got, stay)
	}
	if pt.len() != n || pt.main.Len() != n-len(stay) {
		t.Fatalf("table holds %d (%d established), want %d (%d)", pt.len(), pt.main.Len(), n, n-len(stay))
	}
	if evicted != 0 {
		t.Fatalf("%d evictions reported for moves", evicted)
	}
	// The rebuilt probation still evicts its oldest first.
	pt.add(&peer{id: "new"}, false)
	if _, ok := pt.peek(stay[0]); ok || evicted != 1 {
		t.Fatalf("adding past MaxPeers: oldest on probation kept (evicted %d)", evicted)
	}
}
