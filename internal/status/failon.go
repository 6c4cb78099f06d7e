package status

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hbmesh/hbmesh/monitor"
)

// ErrFailOn is wrapped by the error [Run] returns when a --fail-on
// condition holds, after the report has been printed, so the CLI exits 1.
var ErrFailOn = errors.New("--fail-on")

// FailConditions returns the conditions --fail-on can name, in the order
// [Report.Find] reports them:
//
//   - dead: a monitor says a peer is dead
//   - suspect: a monitor says a peer is suspect
//   - split: monitors disagree on a peer (Peer.Disagree)
//   - unready: a monitor is not ready or impaired, answered with an error
//     or a reply no monitor sends, or did not answer both requests in time
//   - shared-id: monitors share an id (Monitor.Instances > 1), which
//     their --id should not let them do
//   - conflict: a monitor hears two processes beating as one peer id
//     (Peer.Conflict), so a death of either may go unreported
//
// Every monitor counts, those sharing an id too: what the others under
// a shared id say is in Monitor.Others and Peer.SharedStates, and dead,
// suspect, split, unready and conflict count it as they count the
// monitor each row and column show. Find also fails a report that
// ignored replies, or in which fewer monitors answered than were
// expected (Report.Expected), whatever the conditions.
func FailConditions() []string {
	return []string{"dead", "suspect", "split", "unready", "shared-id", "conflict"}
}

// ParseFailOn parses a comma-separated list of FailConditions. Empty
// means none.
func ParseFailOn(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	known := FailConditions()
	var conds []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		found := false
		for _, k := range known {
			found = found || c == k
		}
		if !found {
			return nil, fmt.Errorf("unknown condition %q: want a comma list of %s", c, strings.Join(known, ","))
		}
		conds = append(conds, c)
	}
	return conds, nil
}

// Find returns, for each of conds that holds in r, how often, as "2 peers
// dead" or "1 monitor id shared"; nil when none holds. conds are names
// from FailConditions; others are ignored. If r ignored replies (see
// [Report.Ignored]), or fewer monitors answered than r.Expected, any
// monitor's view may be missing, so no condition can be ruled out: given
// any conds, Find then also returns "12 replies ignored" or "2 of 3
// expected monitors answered".
func (r *Report) Find(conds []string) []string {
	var found []string
	for _, c := range FailConditions() {
		want := false
		for _, w := range conds {
			want = want || w == c
		}
		if !want {
			continue
		}
		if n, noun := r.count(c); n > 0 {
			if n > 1 {
				noun += "s"
			}
			word := c
			switch c {
			case "shared-id":
				word = "shared"
			case "conflict":
				word = "in conflict"
			}
			found = append(found, fmt.Sprintf("%d %s %s", n, noun, word))
		}
	}
	if n := r.Answered(); n < r.Expected && len(conds) > 0 {
		found = append(found, fmt.Sprintf("%d of %d expected monitors answered", n, r.Expected))
	}
	if r.Ignored > 0 && len(conds) > 0 {
		noun := "replies"
		if r.Ignored == 1 {
			noun = "reply"
		}
		found = append(found, fmt.Sprintf("%d %s ignored", r.Ignored, noun))
	}
	return found
}

// count returns how many peers or monitors condition c holds for, and
// which of the two it counts.
func (r *Report) count(c string) (int, string) {
	n := 0
	switch c {
	case "dead", "suspect":
		st := monitor.StateDead.String()
		if c == "suspect" {
			st = monitor.StateSuspect.String()
		}
		for i := range r.Peers {
			p := &r.Peers[i]
			says := false
			for _, s := range p.States {
				says = says || s == st
			}
			for _, s := range p.SharedStates {
				says = says || s.State == st
			}
			if says {
				n++
			}
		}
		return n, "peer"
	case "split":
		return r.Disagreements(), "peer"
	case "conflict":
		return r.Conflicts(), "peer id"
	case "unready":
		for _, m := range r.Monitors {
			if m.Error != "" || !m.Status || !m.PeersAnswered || !m.Ready || m.Impaired {
				n++
			}
			for i := range m.Others {
				if !m.Others[i].trusted() {
					n++
				}
			}
		}
	case "shared-id":
		for _, m := range r.Monitors {
			if m.Instances > 1 {
				n++
			}
		}
		return n, "monitor id"
	}
	return n, "monitor"
}
