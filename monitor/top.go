package monitor

import (
	"slices"
)

// stateSet is a set of states as a bitmask. Every State a peer can be in
// is below 8; a larger value in a filter matches no peer.
type stateSet uint8

func newStateSet(states []State) stateSet {
	if len(states) == 0 {
		return ^stateSet(0)
	}
	var s stateSet
	for _, st := range states {
		if st < 8 {
			s |= 1 << st
		}
	}
	return s
}

func (s stateSet) has(st State) bool { return st < 8 && s&(1<<st) != 0 }

// order is a peer's place in list order (ComparePeers), as far as it can
// be told without reading the id: its state's severity, then its key,
// which orders ids as natsort.Compare does unless keys are equal.
type order struct {
	sev int
	key uint64
}

// compare orders a and b by severity, then key; 0 means that only their
// ids can tell them apart. Plain comparisons, not cmp.Compare, keep it
// small enough to inline into quickselect's loop.
func (a order) compare(b order) int {
	switch {
	case a.sev < b.sev, a.sev == b.sev && a.key < b.key:
		return -1
	case a.sev > b.sev, a.key > b.key:
		return 1
	}
	return 0
}

// rank is a peer with its order.
type rank struct {
	order
	p *peer
}

func rankOf(p *peer) rank { return rank{order{p.state.Severity(), p.key}, p} }

// before reports whether a comes before b in list order, reading the ids
// only when the orders tie. Ids are unique in a table, and ComparePeers
// finds no two distinct ids equal, so the order is strict: the first N
// peers are one set whichever way they are found.
func before(a, b *rank) bool {
	if c := a.compare(b.order); c != 0 {
		return c < 0
	}
	return ComparePeers(a.p.state, a.p.id, b.p.state, b.p.id) < 0
}

// topSet finds the first limit of a stream of peers in list order without
// sorting the stream. Peers that can still be among the first limit
// collect in buf; when it is full, it is cut to its first limit, and the
// last of those becomes the bar a peer must come before to be kept at
// all. A cut costs O(len(buf)) comparisons (quickselect) and frees room
// for 3*limit more peers, so a stream of n peers costs O(n) comparisons
// whatever its order; a heap would cost O(n log limit) for a stream that
// arrives in reverse list order.
type topSet struct {
	limit  int
	buf    []rank // cut when full
	bar    rank   // valid once barSet
	barSet bool
}

// newTopSet returns a topSet for a stream of at most n peers.
func newTopSet(limit, n int) *topSet {
	size := n // no cut before the end: they all fit
	if limit <= n/4 {
		size = 4 * limit
	}
	return &topSet{limit: limit, buf: make([]rank, 0, size)}
}

func (s *topSet) add(p *peer) {
	r := rankOf(p)
	if s.barSet && !before(&r, &s.bar) {
		return
	}
	s.buf = append(s.buf, r)
	if len(s.buf) == cap(s.buf) {
		s.cut()
	}
}

// cut keeps the first limit peers of buf.
func (s *topSet) cut() {
	if len(s.buf) <= s.limit {
		return
	}
	selectFirst(s.buf, s.limit)
	s.buf = s.buf[:s.limit]
	s.bar, s.barSet = s.buf[s.limit-1], true
}

// peers returns the first limit peers of the stream, in no order.
func (s *topSet) peers() []rank {
	s.cut()
	return s.buf
}

// selectFirst reorders rs so that its first k (0 < k < len(rs)) are the
// first k in list order, and rs[k-1] the last of them (Hoare's
// quickselect, median-of-three pivots).
func selectFirst(rs []rank, k int) {
	lo, hi := 0, len(rs)-1
	for lo < hi {
		// The median of three goes to rs[lo] as the pivot; a sorted or
		// reversed buffer then splits in the middle.
		mid := lo + (hi-lo)/2
		if before(&rs[mid], &rs[lo]) {
			rs[mid], rs[lo] = rs[lo], rs[mid]
		}
		if before(&rs[hi], &rs[lo]) {
			rs[hi], rs[lo] = rs[lo], rs[hi]
		}
		if before(&rs[hi], &rs[mid]) {
			rs[hi], rs[mid] = rs[mid], rs[hi]
		}
		rs[lo], rs[mid] = rs[mid], rs[lo]
		pivot := rs[lo]
		i, j := lo, hi+1
		for {
			for i++; i <= hi && before(&rs[i], &pivot); i++ {
			}
			for j--; before(&pivot, &rs[j]); j-- {
			}
			if i >= j {
				break
			}
			rs[i], rs[j] = rs[j], rs[i]
		}
		rs[lo], rs[j] = rs[j], rs[lo] // the pivot lands in its place, j
		switch {
		case j == k-1:
			return
		case j < k-1:
			lo = j + 1
		default:
			hi = j - 1
		}
	}
}

// top is Monitor.TopPeers' work under the lock: one pass over the table
// that reads each peer's state and key in place, and its id only when
// keys tie; PeerInfo is built only for the peers kept, and pl says where
// each goes, for sortTop.
func (t *table) top(limit int, states stateSet, v int64) (kept []PeerInfo, pl []placing, matched int) {
	limit = max(limit, 0)
	// The table counts its peers by state: when none is in the states
	// asked for (no dead peer, the usual answer to what every scrape of
	// the dead-peer series asks), there is nothing to look for.
	for st, n := range t.st.byState {
		if states.has(State(st)) {
			matched += n
		}
	}
	if matched == 0 {
		return nil, nil, 0
	}
	if limit == 0 {
		return nil, nil, matched
	}
	matched = 0
	sel := newTopSet(limit, t.peers.len())
	t.peers.each(func(p *peer) {
		if !states.has(p.state) {
			return
		}
		matched++
		if limit > 0 {
			sel.add(p)
		}
	})
	rs := sel.peers()
	kept, pl = make([]PeerInfo, len(rs)), make([]placing, len(rs))
	for i := range rs {
		kept[i] = t.info(rs[i].p, v)
		pl[i] = placing{rs[i].order, i}
	}
	return kept, pl, matched
}

// placing is a rank without its peer, which may change once the lock is
// let go: i indexes the peer's snapshot instead.
type placing struct {
	order
	i int
}

// sortTop returns kept in list order, sorting by the orders in pl, which
// it reorders, and then by id, as before does. It needs no lock.
func sortTop(kept []PeerInfo, pl []placing) []PeerInfo {
	slices.SortFunc(pl, func(a, b placing) int {
		if c := a.compare(b.order); c != 0 {
			return c
		}
		x, y := &kept[a.i], &kept[b.i]
		return ComparePeers(x.State, x.ID, y.State, y.ID)
	})
	out := make([]PeerInfo, len(kept))
	for j, p := range pl {
		out[j] = kept[p.i]
	}
	return out
}
