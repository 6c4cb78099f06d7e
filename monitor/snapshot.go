package monitor

// Snapshots of the table for readers outside the beat path: each holds
// the monitor's lock while it copies, so beats wait meanwhile, and
// parses the peers' labels only after letting go of it.

// Peers returns a snapshot of every peer in the table.
func (m *Monitor) Peers() []PeerInfo {
	out := m.peersLocked()
	parseLabels(out)
	return out
}

// peersLocked is the part of Peers that holds the lock.
func (m *Monitor) peersLocked() []PeerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.tab.vnow(m.cfg.Clock.Now())
	out := make([]PeerInfo, 0, m.tab.peers.len())
	m.tab.peers.each(func(p *peer) { out = append(out, m.tab.info(p, v)) })
	return out
}

// TopPeers returns the first limit peers whose state is one of states
// (any state if none is given), worst state first ([State.Severity]) and
// then by id in natural order: runs of digits compare as numbers, so
// web-2 comes before web-10, and of two equal numbers the one with fewer
// leading zeros comes first. matched counts every peer in those states,
// however many are returned; a limit of 0 or less returns only the count.
//
// It is what a page of a peer list needs, and it holds the monitor's
// lock for less than [Monitor.Peers] (beats wait while it is held): one
// pass over the table compares each peer's state and a numeric summary
// of its id kept in the table, and snapshots only the peers it returns,
// which it sorts after letting go of the lock. When no peer is in those
// states (no dead peer, typically) it returns at once, without the pass.
// For every peer, take Peers, which does not sort.
func (m *Monitor) TopPeers(limit int, states ...State) (top []PeerInfo, matched int) {
	kept, pl, matched := m.topLocked(limit, newStateSet(states))
	parseLabels(kept)
	return sortTop(kept, pl), matched
}

// topLocked is the part of TopPeers that holds the lock.
func (m *Monitor) topLocked(limit int, states stateSet) ([]PeerInfo, []placing, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tab.top(limit, states, m.tab.vnow(m.cfg.Clock.Now()))
}

// Peer returns the snapshot of one peer.
func (m *Monitor) Peer(id string) (PeerInfo, bool) {
	m.mu.Lock()
	p, ok := m.tab.peers.peek(id)
	var in PeerInfo
	if ok {
		in = m.tab.info(p, m.tab.vnow(m.cfg.Clock.Now()))
	}
	m.mu.Unlock()
	in.parseLabels()
	return in, ok
}
