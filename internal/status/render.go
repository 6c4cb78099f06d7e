package status

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hbmesh/hbmesh/internal/printable"
)

// RenderOptions tunes [Render].
type RenderOptions struct {
	// Now is the reference for LAST BEAT ages. Default: the report's Time.
	Now time.Time
}

// shortState abbreviates a state for the per-monitor columns.
var shortState = map[string]string{
	"alive": "A", "suspect": "S", "dead": "D", "left": "L", StateMissing: "-",
}

// Render writes r as an aligned table, one row per peer in the report's
// order, then a footer with every monitor that answered and the report's
// warnings.
//
// Every field a reply chose (ids, hosts, versions, errors) is written as
// is when it is printable text and otherwise quoted and escaped (package
// internal/printable), and long ones are cut: whoever may answer on the
// control subjects cannot drive the terminal, forge a row or widen every
// row of the table.
//
// STATE is the state all monitors agree on, or SPLIT. The "!" column
// marks a disagreement and lists what each monitor says, and a peer id
// two processes beat as at once ("two processes beat as this id"). The last columns,
// one per monitor, abbreviate its state: A alive, S suspect, D dead,
// L left, - missing, ? unknown (its reply was truncated). Of monitors
// that share an id, the column shows one, the same whatever order their
// replies came in (see Monitor.Instance); where another says something
// else about a peer, the "!" column lists each of them, the column's
// too, as id@instance=state (id@?=state for a monitor too old to send
// its instance id), marked "!" when that is a disagreement, and the
// footer names those of them not to be trusted.
func Render(w io.Writer, r *Report, opts RenderOptions) error {
	now := opts.Now
	if now.IsZero() {
		now = r.Time
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := []string{"ID", "HOST", "STATE", "!", "LAST BEAT", "SEQ", "VERSION"}
	for _, m := range r.Monitors {
		hdr = append(hdr, cell(m.ID))
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for i := range r.Peers {
		p := &r.Peers[i]
		state := p.State
		if p.Disagree {
			state = strings.ToUpper(StateSplit)
		}
		var notes []string
		if p.Disagree || len(p.SharedStates) > 0 {
			notes = says(r.Monitors, p)
		}
		if p.Conflict {
			notes = append(notes, "two processes beat as this id")
		}
		mark := strings.Join(notes, " ")
		if p.Disagree || p.Conflict {
			// "!" flags what needs a look; instances under a shared id
			// that only differ in not knowing a dead peer do not.
			mark = strings.TrimSpace("! " + mark)
		}
		row := []string{cell(p.ID), cell(p.Host), cell(state), mark, age(now, p.LastBeat), fmt.Sprint(p.Seq), cell(p.Version)}
		for _, m := range r.Monitors {
			st, ok := shortState[p.States[m.ID]]
			if !ok {
				st = "?"
			}
			row = append(row, st)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	split := r.Disagreements()
	summary := "\n" + count(len(r.Peers), "peer") + ", " + count(r.MonitorCount(), "monitor")
	if n := r.MonitorCount(); n != len(r.Monitors) {
		summary += " under " + count(len(r.Monitors), "id")
	}
	if split > 0 {
		summary += fmt.Sprintf(", monitors disagree on %d", split)
	}
	if c := r.Conflicts(); c > 0 {
		summary += fmt.Sprintf(", %d beaten by two processes", c)
	}
	if _, err := fmt.Fprintln(w, summary+":"); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range r.Monitors {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cell(m.ID), readiness(m), count(m.Peers, "peer"), cell(m.Version))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range r.Warnings {
		if _, err := fmt.Fprintln(w, "warning: "+printable.Cut(warn, maxWarning)); err != nil {
			return err
		}
	}
	return nil
}

// Longest text Render writes, in runes, for a table cell, a monitor's
// error and a warning. Ids (64 bytes) and the hosts of real fleets fit in
// a cell; a reply's longer fields are cut.
const (
	maxCell    = 64
	maxMessage = 200
	maxWarning = 2000
)

// cell is one table cell from a reply's field.
func cell(s string) string { return printable.Cut(s, maxCell) }

// says lists what each monitor says about p, as id=state. Under an id
// that monitors share, where another instance says something else than
// the column, each is named, the column's too, as id@instance=state in
// the order of their instance ids: which instance the column shows
// changes when it misses a request or stops, and who says what must not
// change with it.
func says(monitors []Monitor, p *Peer) []string {
	out := make([]string, 0, len(monitors)+len(p.SharedStates))
	type said struct{ instance, state string }
	for _, m := range monitors {
		st, ok := p.States[m.ID]
		var shared []said
		for _, s := range p.SharedStates {
			if s.Monitor == m.ID {
				shared = append(shared, said{s.Instance, s.State})
			}
		}
		if len(shared) == 0 {
			if ok {
				out = append(out, cell(m.ID)+"="+cell(st))
			}
			continue
		}
		if ok {
			// First, so that of two replies claiming one instance id
			// (a forger can claim any) the column's is named first.
			shared = append([]said{{m.Instance, st}}, shared...)
		}
		slices.SortStableFunc(shared, func(a, b said) int { return strings.Compare(a.instance, b.instance) })
		for _, s := range shared {
			out = append(out, cell(m.ID)+"@"+cell(cmp.Or(s.instance, "?"))+"="+cell(s.state))
		}
	}
	return out
}

// readiness says in a few words whether a monitor's verdicts can be trusted.
func readiness(m Monitor) string {
	var s string
	switch {
	case m.Error != "":
		s = "error: " + printable.Cut(m.Error, maxMessage)
	case !m.Status:
		s = "no status reply"
	case m.Ready:
		s = "ready"
	default:
		s = "NOT READY: " + printable.Cut(m.ReadyError, maxMessage)
	}
	if m.Impaired && m.Ready {
		s += ", impaired"
	}
	if !m.PeersAnswered && m.Error == "" {
		s += ", no peers reply"
	}
	if m.Truncated {
		s += ", peers truncated"
	}
	if m.Instances > 1 {
		s += fmt.Sprintf(", %d MONITORS SHARE THIS ID", m.Instances)
		if m.Instance != "" {
			s += ", showing instance " + cell(m.Instance)
		}
	}
	for i := range m.Others {
		if o := &m.Others[i]; !o.trusted() {
			s += "; instance " + cell(cmp.Or(o.ID, "?")) + ": " + otherReadiness(o)
		}
	}
	return s
}

// otherReadiness says in a few words why the verdicts of an instance
// sharing a monitor's id cannot be trusted.
func otherReadiness(o *Instance) string {
	var says []string
	switch {
	case !o.Status:
		says = append(says, "no status reply")
	case !o.Ready:
		says = append(says, "NOT READY: "+printable.Cut(o.ReadyError, maxMessage))
	case o.Impaired:
		says = append(says, "impaired")
	}
	if !o.PeersAnswered {
		says = append(says, "no peers reply")
	}
	return strings.Join(says, ", ")
}

// age formats how long ago t was: tenths of a second under a minute,
// whole seconds above, "-" for never.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// RenderJSON writes r as one JSON document on one line. Control
// characters in strings are escaped, C1 included, so the document is
// safe to print on a terminal as well as to parse.
func RenderJSON(w io.Writer, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(printable.JSON(b), '\n'))
	return err
}

// count says "1 peer" or "2 peers".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
