package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// PeerList is the body of /api/peers and of the SSE "snapshot" event.
type PeerList struct {
	Monitor string    `json:"monitor"`
	Time    time.Time `json:"time"`
	// Matched counts the peers that passed the filter. It is more than
	// len(Peers) exactly when a limit cut the list short.
	Matched int                `json:"matched"`
	Peers   []monitor.PeerJSON `json:"peers"` // in the order of monitor.ComparePeers
}

// peerFilter selects peers for /api/peers.
type peerFilter struct {
	states []monitor.State // empty: all
	q      string          // lower-cased substring; empty: all
	limit  int             // most peers returned, worst first; < 0: all
}

// noLimit is peerFilter.limit when the request sets none.
const noLimit = -1

func parseFilter(r *http.Request) (peerFilter, error) {
	f := peerFilter{limit: noLimit}
	query := r.URL.Query()
	for k := range query {
		if k != "state" && k != "q" && k != "limit" {
			// A typo (?states=dead) must not quietly return every peer.
			return f, fmt.Errorf("unknown parameter %q: want state, q or limit", k)
		}
	}
	for _, v := range query["state"] {
		for name := range strings.SplitSeq(v, ",") {
			st, err := monitor.ParseState(strings.TrimSpace(name))
			if err != nil || st == monitor.StateUnknown {
				return f, fmt.Errorf("state %q: want alive, suspect, dead or left", name)
			}
			// Each peer is checked against the list: a state named
			// 10,000 times must not cost 10,000 comparisons per peer.
			if !slices.Contains(f.states, st) {
				f.states = append(f.states, st)
			}
		}
	}
	f.q = strings.ToLower(query.Get("q"))
	var err error
	f.limit, err = parseLimit(query["limit"])
	return f, err
}

// parseLimit reads the values of a limit parameter: none means noLimit.
// Zero is allowed, and returns no peers but still their count.
func parseLimit(vals []string) (int, error) {
	switch len(vals) {
	case 0:
		return noLimit, nil
	case 1:
		n, err := strconv.Atoi(vals[0])
		if err != nil || n < 0 {
			return noLimit, fmt.Errorf("limit %q: want a whole number of peers, 0 or more", vals[0])
		}
		return n, nil
	default:
		return noLimit, fmt.Errorf("limit given %d times: give it once", len(vals))
	}
}

func containsFold(s, lowerSub string) bool {
	return strings.Contains(strings.ToLower(s), lowerSub)
}

func (f *peerFilter) match(p *monitor.PeerInfo) bool {
	if len(f.states) > 0 && !slices.Contains(f.states, p.State) {
		return false
	}
	if f.q == "" || containsFold(p.ID, f.q) || containsFold(p.Host, f.q) {
		return true
	}
	for k, v := range p.Labels {
		if containsFold(k+"="+v, f.q) {
			return true
		}
	}
	return false
}

// peerList builds the /api/peers body; a nil filter selects every peer.
// Only the peers within the limit are converted and encoded, which for
// a whole table of 10,000 is most of the cost (docs/PERFORMANCE.md).
func (s *Server) peerList(f *peerFilter) PeerList {
	now := s.cfg.Now()
	ps, matched := s.selectPeers(f)
	return s.newPeerList(ps, matched, now)
}

func (s *Server) newPeerList(ps []monitor.PeerInfo, matched int, now time.Time) PeerList {
	out := PeerList{Monitor: s.id, Time: now.UTC(), Matched: matched, Peers: make([]monitor.PeerJSON, len(ps))}
	for i := range ps {
		out.Peers[i] = ps[i].JSON(now)
	}
	return out
}

// selectPeers returns the peers f selects, in list order and within its
// limit, and how many passed the filter. A limited request without a
// search is left to Source.TopPeers, which snapshots only the peers it
// returns and so holds the monitor's lock for a fraction of the time a
// snapshot of every peer takes (docs/PERFORMANCE.md).
func (s *Server) selectPeers(f *peerFilter) ([]monitor.PeerInfo, int) {
	if f != nil && f.limit >= 0 && f.q == "" {
		return s.cfg.Source.TopPeers(f.limit, f.states...)
	}
	return s.selectFromAll(f)
}

// selectFromAll is selectPeers from a snapshot of every peer: for a
// request without a limit, and for a search, which matches labels the
// monitor keeps unparsed.
func (s *Server) selectFromAll(f *peerFilter) ([]monitor.PeerInfo, int) {
	ps := s.cfg.Source.Peers()
	if f != nil {
		ps = slices.DeleteFunc(ps, func(p monitor.PeerInfo) bool { return !f.match(&p) })
	}
	matched := len(ps)
	monitor.SortPeers(ps)
	if f != nil && f.limit >= 0 && f.limit < len(ps) {
		ps = ps[:f.limit]
	}
	return ps, matched
}

// status is the body of /api/status and of the SSE "status" event.
func (s *Server) status() monitor.StatusJSON {
	st := s.cfg.Source.Stats()
	j := st.JSON(s.cfg.Source.Ready())
	j.Monitor, j.Prefix, j.Version, j.Time = s.id, s.cfg.Prefix, s.cfg.Version, s.cfg.Now().UTC()
	return j
}

// errorJSON is the body of every API error.
type errorJSON struct {
	Error string `json:"error"`
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		s.writeJSON(w, r, http.StatusBadRequest, errorJSON{err.Error()})
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.peerList(&f))
}

func (s *Server) handlePeer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, ok := s.cfg.Source.Peer(id)
	if !ok {
		s.writeJSON(w, r, http.StatusNotFound, errorJSON{fmt.Sprintf("peer %q not known to monitor %q", id, s.id)})
		return
	}
	s.writeJSON(w, r, http.StatusOK, p.JSON(s.cfg.Now()))
}

// handleAPINotFound answers every /api/ path no other route takes, such as
// /api/peers/ with an empty id, with a JSON 404 rather than the mux's
// plain-text one: API clients parse every answer as JSON.
func (s *Server) handleAPINotFound(w http.ResponseWriter, r *http.Request) {
	msg := fmt.Sprintf("no such endpoint %q", r.URL.Path)
	if r.URL.Path == "/api/peers/" {
		msg = "empty peer id: use /api/peers/{id}, or /api/peers for every peer"
	}
	s.writeJSON(w, r, http.StatusNotFound, errorJSON{msg})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, s.status())
}
