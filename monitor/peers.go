package monitor

import "github.com/hashicorp/golang-lru/v2/simplelru"

// peerTable is the bounded set of peers, in two LRUs: every new id enters
// a small probation LRU, and its second accepted beat promotes it to the
// main one. A flood of ids that each beat once only churns probation, so
// it cannot push established peers out of the table. Together the two hold
// at most MaxPeers peers.
type peerTable struct {
	main  *simplelru.LRU[string, *peer]
	fresh *simplelru.LRU[string, *peer] // nil when MaxPeers is too small for two tiers
	// quiet suppresses onEvict while the table moves or drops a peer on
	// purpose; only pressure evictions are reported.
	quiet   bool
	onEvict func(*peer)
}

func newPeerTable(maxPeers int, onEvict func(*peer)) *peerTable {
	pt := &peerTable{onEvict: onEvict}
	cb := func(_ string, p *peer) {
		if !pt.quiet {
			pt.onEvict(p)
		}
	}
	freshSize := maxPeers / 4
	if freshSize > 0 {
		pt.fresh, _ = simplelru.NewLRU(freshSize, cb)
	}
	pt.main, _ = simplelru.NewLRU(maxPeers-freshSize, cb)
	return pt
}

// get finds id, marking it recently used.
func (pt *peerTable) get(id string) (*peer, bool) {
	if p, ok := pt.main.Get(id); ok {
		return p, true
	}
	if pt.fresh != nil {
		return pt.fresh.Get(id)
	}
	return nil, false
}

// peek finds id without touching the LRU order.
func (pt *peerTable) peek(id string) (*peer, bool) {
	if p, ok := pt.main.Peek(id); ok {
		return p, true
	}
	if pt.fresh != nil {
		return pt.fresh.Peek(id)
	}
	return nil, false
}

// add inserts a new peer on probation (or straight into main if
// established is set, as for peers restored from memory).
func (pt *peerTable) add(p *peer, established bool) {
	if established || pt.fresh == nil {
		p.promoted = true
		pt.main.Add(p.id, p)
		return
	}
	pt.fresh.Add(p.id, p)
}

// promote moves p from probation into the main LRU.
func (pt *peerTable) promote(p *peer) {
	if p.promoted {
		return
	}
	pt.quiet = true
	pt.fresh.Remove(p.id)
	pt.quiet = false
	p.promoted = true
	pt.main.Add(p.id, p)
}

// remove drops id without reporting an eviction.
func (pt *peerTable) remove(id string) {
	pt.quiet = true
	if !pt.main.Remove(id) && pt.fresh != nil {
		pt.fresh.Remove(id)
	}
	pt.quiet = false
}

func (pt *peerTable) len() int {
	n := pt.main.Len()
	if pt.fresh != nil {
		n += pt.fresh.Len()
	}
	return n
}

// each calls fn for every peer, established ones first.
func (pt *peerTable) each(fn func(*peer)) {
	for _, p := range pt.main.Values() {
		fn(p)
	}
	if pt.fresh != nil {
		for _, p := range pt.fresh.Values() {
			fn(p)
		}
	}
}
