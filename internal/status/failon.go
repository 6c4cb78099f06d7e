package status

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrFailOn is wrapped by the error [Run] returns when a --fail-on
// condition holds, after the report has been printed, so the CLI exits 1.
var ErrFailOn = errors.New("--fail-on")

// FailConditions returns the conditions --fail-on can name, in the order
// [Report.Find] reports them: a monitor says a peer is dead, or suspect;
// monitors disagree on a peer (split); a monitor is not ready or
// impaired, or did not answer both requests (unready); monitors share an
// id (shared-id); a monitor hears two processes beating as one peer id
// (conflict). Every monitor counts, each of several sharing an id too.
func FailConditions() []string {
	return []string{"dead", "suspect", "split", "unready", "shared-id", "conflict"}
}

// ParseFailOn parses a comma-separated list of FailConditions. Empty
// means none.
func ParseFailOn(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var conds []string
	for c := range strings.SplitSeq(s, ",") {
		if c = strings.TrimSpace(c); !slices.Contains(FailConditions(), c) {
			return nil, fmt.Errorf("unknown condition %q: want a comma list of %s", c,
				strings.Join(FailConditions(), ","))
		}
		conds = append(conds, c)
	}
	return conds, nil
}

// Find returns, for each of conds that holds in r, how often, as "2 peers
// dead" or "1 monitor id shared"; nil when none holds. If r ignored
// replies, or fewer monitors answered than r.Expected, a monitor's view
// may be missing, so no condition can be ruled out: given any conds,
// Find then also returns "12 replies ignored" or "2 of 3 expected
// monitors answered".
func (r *Report) Find(conds []string) []string {
	says := func(st string) func(*Peer) bool {
		return func(p *Peer) bool {
			for _, s := range p.States {
				if s == st {
					return true
				}
			}
			return false
		}
	}
	unready := func(m *Monitor) bool { return !m.answeredBoth() || !m.Ready || m.Impaired }
	shared := map[string]bool{}
	for i := range r.Monitors {
		if r.Monitors[i].Instances > 1 {
			shared[r.Monitors[i].ID] = true
		}
	}
	var found []string
	for _, c := range []struct {
		cond, noun, word string
		n                int
	}{
		{"dead", "peer", "dead", countFunc(r.Peers, says("dead"))},
		{"suspect", "peer", "suspect", countFunc(r.Peers, says("suspect"))},
		{"split", "peer", "split", r.Disagreements()},
		{"unready", "monitor", "unready", countFunc(r.Monitors, unready)},
		{"shared-id", "monitor id", "shared", len(shared)},
		{"conflict", "peer id", "in conflict", r.Conflicts()},
	} {
		if c.n > 0 && slices.Contains(conds, c.cond) {
			found = append(found, count(c.n, c.noun)+" "+c.word)
		}
	}
	if len(conds) > 0 && r.Answered() < r.Expected {
		found = append(found, fmt.Sprintf("%d of %d expected monitors answered", r.Answered(), r.Expected))
	}
	if len(conds) > 0 && r.Ignored > 0 {
		found = append(found, count(r.Ignored, "reply")+" ignored")
	}
	return found
}
