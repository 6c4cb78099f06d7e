package status

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/hbmesh/hbmesh/internal/discovery"
)

// The replies of the monitors under one monitor id, and the order that
// makes a report of them independent of the order they came in.

// instance is what one monitor answered: its status and peers replies,
// each nil until read.
type instance struct {
	id     string // its instance id, "" for a monitor too old to send it
	status *discovery.StatusResponse
	peers  *discovery.PeersResponse
}

func (x *instance) answeredBoth() bool { return x.status != nil && x.peers != nil }

// summary is what x's replies say of it, for Monitor.Others and, but
// for Connected, the row of the instance shown.
func (x *instance) summary() Instance {
	s := Instance{ID: x.id}
	if p := x.peers; p != nil {
		s.PeersAnswered, s.Truncated, s.Peers = true, p.Truncated, p.Total
	}
	if st := x.status; st != nil {
		s.Status, s.Version, s.Ready, s.ReadyError, s.Impaired = true, st.Version, st.Ready, st.ReadyError, st.Impaired
		s.Peers = st.Peers
	}
	return s
}

// canonical returns the instances of one monitor id in an order that
// depends on their replies only, not on the order they came in: by
// instance id (none, from monitors too old to send one, first), and
// under one instance id the instances re-paired from its replies.
// Replies that share an instance id, or have none, cannot be told
// apart, so answered pairs them as they come; canonical sorts the status
// and the peers replies under each instance id by their content and
// pairs the first of each, then the second, and so on. The same replies
// are then always the same instances.
func canonical(list []*instance) []*instance {
	type replies struct {
		status []*discovery.StatusResponse
		peers  []*discovery.PeersResponse
	}
	byID := map[string]*replies{}
	for _, x := range list {
		rs := byID[x.id]
		if rs == nil {
			rs = &replies{}
			byID[x.id] = rs
		}
		if x.status != nil {
			rs.status = append(rs.status, x.status)
		}
		if x.peers != nil {
			rs.peers = append(rs.peers, x.peers)
		}
	}
	out := make([]*instance, 0, len(list))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		rs := byID[id]
		byContent(rs.status)
		byContent(rs.peers)
		for i := range max(len(rs.status), len(rs.peers)) {
			x := &instance{id: id}
			if i < len(rs.status) {
				x.status = rs.status[i]
			}
			if i < len(rs.peers) {
				x.peers = rs.peers[i]
			}
			out = append(out, x)
		}
	}
	return out
}

// byContent sorts replies by their JSON encoding, an order of their
// content alone. Only replies that share an instance id, or have none,
// need it: real monitors that send an instance id never share one.
func byContent[T any](replies []*T) {
	if len(replies) < 2 {
		return
	}
	key := make(map[*T]string, len(replies))
	for _, r := range replies {
		b, _ := json.Marshal(r) // decoded from JSON and checked: it encodes
		key[r] = string(b)
	}
	slices.SortStableFunc(replies, func(a, b *T) int { return strings.Compare(key[a], key[b]) })
}

// shown returns the index, in a list from canonical, of the instance
// whose replies a shared id's row and column show: of those that
// answered both requests (any, if none did), the one with the lowest
// instance id, one that sends an instance id before one too old to. So
// the row does not change with the order replies come in, nor from one
// round of --watch to the next while the same monitors run and answer,
// and it names the instance it shows.
func shown(list []*instance) int {
	best := 0
	for i, x := range list[1:] {
		b := list[best]
		switch {
		case x.answeredBoth() != b.answeredBoth():
			if x.answeredBoth() {
				best = i + 1
			}
		case (x.id != "") != (b.id != ""):
			if x.id != "" {
				best = i + 1
			}
		}
		// Otherwise list's order holds: by instance id, then canonical.
	}
	return best
}
