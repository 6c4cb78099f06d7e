package monitor

import (
	"strings"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/hbmesh/hbmesh/internal/natsort"
)

// peerTable is the bounded set of peers, kept in two LRUs: every new id
// enters probation, and its second accepted beat promotes it to the
// established set. Together they hold at most MaxPeers peers. When a new id
// would exceed that, the least recently heard peer on probation goes first;
// an established peer goes only when probation is empty, that is when the
// fleet itself outgrows MaxPeers. So a flood of ids that each beat once
// churns probation and cannot push established peers out, while a cold
// start of a whole fleet (every id new at once) fits as long as the fleet
// fits in MaxPeers.
type peerTable struct {
	max   int
	main  *simplelru.LRU[string, *peer] // established
	fresh *simplelru.LRU[string, *peer] // probation
	// quiet suppresses onEvict while the table moves or drops a peer on
	// purpose; only evictions for room are reported.
	quiet   bool
	onEvict func(*peer)
	cb      func(string, *peer)
	// freshPeak is probation's high-water mark since it was last empty: a
	// Go map keeps its buckets after its entries are deleted, so once a
	// cold start has passed through probation, its emptied map is replaced
	// rather than kept at the size of the whole fleet.
	freshPeak int
	// keyPrefix is the longest prefix every id that entered the table
	// shares (natsort.CommonPrefix), and each peer's key is natsort.Key of
	// its id after it: ids of one fleet often share more than the 8 bytes
	// a key summarises ("prod-eu-west-1-web-"), and keys that all tie
	// would decide nothing. hasPrefix is false until the first id.
	keyPrefix string
	hasPrefix bool
}

func newPeerTable(maxPeers int, onEvict func(*peer)) *peerTable {
	pt := &peerTable{max: maxPeers, onEvict: onEvict}
	pt.cb = func(_ string, p *peer) {
		if !pt.quiet {
			pt.onEvict(p)
		}
	}
	// Each LRU could hold every peer; the shared bound is enforced by add,
	// so their own eviction never fires.
	pt.main, _ = simplelru.NewLRU(maxPeers+1, pt.cb)
	pt.fresh, _ = simplelru.NewLRU(maxPeers+1, pt.cb)
	return pt
}

// get finds id, marking it recently heard.
func (pt *peerTable) get(id string) (*peer, bool) {
	if p, ok := pt.main.Get(id); ok {
		return p, true
	}
	return pt.fresh.Get(id)
}

// peek finds id without touching the LRU order.
func (pt *peerTable) peek(id string) (*peer, bool) {
	if p, ok := pt.main.Peek(id); ok {
		return p, true
	}
	return pt.fresh.Peek(id)
}

// add inserts a new peer on probation, or straight into the established
// set if established is set (peers restored from memory), then makes room.
// Every peer enters the table here, so here it gets its sort key.
func (pt *peerTable) add(p *peer, established bool) {
	pt.setKey(p)
	if established {
		p.promoted = true
		pt.main.Add(p.id, p)
	} else {
		pt.fresh.Add(p.id, p)
		pt.freshPeak = max(pt.freshPeak, pt.fresh.Len())
	}
	for pt.len() > pt.max {
		if pt.fresh.Len() > 1 || (pt.fresh.Len() == 1 && established) {
			pt.fresh.RemoveOldest()
		} else {
			pt.main.RemoveOldest()
		}
	}
}

// setKey gives p its key. An id without the prefix every key leaves out
// shortens it, and every key is taken again: O(peers), but the prefix
// only ever shortens, by at least a byte each time, so that happens at
// most once per byte of the first id.
func (pt *peerTable) setKey(p *peer) {
	switch {
	case !pt.hasPrefix:
		pt.keyPrefix, pt.hasPrefix = natsort.CommonPrefix(p.id, p.id), true
	case !strings.HasPrefix(p.id, pt.keyPrefix):
		pt.keyPrefix = natsort.CommonPrefix(pt.keyPrefix, p.id)
		pt.each(func(q *peer) { q.key = natsort.Key(q.id[len(pt.keyPrefix):]) })
	}
	p.key = natsort.Key(p.id[len(pt.keyPrefix):])
}

// promote moves p from probation into the established set.
func (pt *peerTable) promote(p *peer) {
	if p.promoted {
		return
	}
	pt.quiet = true
	pt.fresh.Remove(p.id)
	pt.quiet = false
	p.promoted = true
	pt.main.Add(p.id, p)
	pt.shrinkFresh()
}

// shrinkFresh rebuilds probation once it holds under a quarter of its
// high-water mark (and that mark was large): a cold start of a big fleet
// passes through probation, and a Go map never gives back the buckets of
// deleted entries, so a few ids that beat only once would otherwise pin a
// map sized for the whole fleet. The rebuild copies the remaining peers in
// their LRU order; it costs O(remaining), paid for by the removals that
// shrank probation below a quarter.
func (pt *peerTable) shrinkFresh() {
	n := pt.fresh.Len()
	if pt.freshPeak < 1024 || n >= pt.freshPeak/4 {
		return
	}
	fresh, _ := simplelru.NewLRU(pt.max+1, pt.cb)
	keys, vals := pt.fresh.Keys(), pt.fresh.Values() // oldest first
	for i, k := range keys {
		fresh.Add(k, vals[i])
	}
	pt.fresh, pt.freshPeak = fresh, n
}

// remove drops id without reporting an eviction.
func (pt *peerTable) remove(id string) {
	pt.quiet = true
	if !pt.main.Remove(id) {
		pt.fresh.Remove(id)
		pt.shrinkFresh()
	}
	pt.quiet = false
}

func (pt *peerTable) len() int { return pt.main.Len() + pt.fresh.Len() }

// each calls fn for every peer, established ones first.
func (pt *peerTable) each(fn func(*peer)) {
	for _, p := range pt.main.Values() {
		fn(p)
	}
	for _, p := range pt.fresh.Values() {
		fn(p)
	}
}
