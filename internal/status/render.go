package status

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hbmesh/hbmesh/internal/printable"
)

// shortState abbreviates a state for the per-monitor columns.
var shortState = map[string]string{
	"alive": "A", "suspect": "S", "dead": "D", "left": "L", StateMissing: "-", "": "?",
}

// Render writes r as a table: a row per peer, in the report's order,
// with STATE (SPLIT when monitors disagree), "!" and what each monitor
// says where they disagree or two processes beat as one peer id, and a
// column per monitor ([Monitor.Column]): A alive, S suspect, D dead, L
// left, - missing, ? unknown (its reply was truncated, or it sent none).
// Then a line per monitor and the warnings. Every field a reply chose is
// escaped if it is not printable and cut if long (internal/printable), so
// whoever may answer cannot drive the terminal, forge a row or widen the
// table. LAST BEAT is how long before the report's Time.
func Render(w io.Writer, r *Report) error {
	keys, cols, ids := make([]string, len(r.Monitors)), make([]string, len(r.Monitors)), map[string]bool{}
	for i := range r.Monitors {
		// A column's name may hold an instance id besides the monitor's.
		keys[i], ids[r.Monitors[i].ID] = r.Monitors[i].Column(), true
		cols[i] = printable.Cut(keys[i], 2*maxCell)
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(append([]string{"ID\tHOST\tSTATE\t!\tLAST BEAT\tSEQ\tVERSION"}, cols...), "\t"))
	for i := range r.Peers {
		p := &r.Peers[i]
		row := []string{cell(p.ID), cell(p.Host), cell(p.State), "", age(r.Time, p.LastBeat), fmt.Sprint(p.Seq),
			cell(p.Version)}
		for j := range keys {
			st, ok := p.States[keys[j]]
			if ok && p.Disagree {
				row[3] += " " + cols[j] + "=" + cell(st) // what each says
			}
			row = append(row, shortState[st])
		}
		if p.Disagree {
			row[2], row[3] = strings.ToUpper(StateSplit), "!"+row[3]
		}
		if p.Conflict {
			row[3] = cmp.Or(row[3], "!") + " two processes beat as this id"
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\n%s, %s", count(len(r.Peers), "peer"), count(len(r.Monitors), "monitor"))
	if len(ids) != len(r.Monitors) {
		fmt.Fprintf(&b, " under %s", count(len(ids), "id"))
	}
	if n := r.Disagreements(); n > 0 {
		fmt.Fprintf(&b, ", monitors disagree on %d", n)
	}
	if n := r.Conflicts(); n > 0 {
		fmt.Fprintf(&b, ", %d beaten by two processes", n)
	}
	b.WriteString(":\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for i := range r.Monitors {
		m := &r.Monitors[i]
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cols[i], readiness(m), count(m.Peers, "peer"), cell(m.Version))
	}
	tw.Flush()
	for _, warn := range r.Warnings {
		b.WriteString("warning: " + printable.Cut(warn, maxWarning) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Longest text Render writes, in runes, for a table cell, a monitor's
// ready error and a warning. Ids (64 bytes) and the hosts of real fleets
// fit in a cell; a reply's longer fields are cut.
const (
	maxCell    = 64
	maxMessage = 200
	maxWarning = 2000
)

// cell is one table cell from a reply's field.
func cell(s string) string { return printable.Cut(s, maxCell) }

// readiness says in a few words whether a monitor's verdicts can be trusted.
func readiness(m *Monitor) string {
	s := "ready"
	switch {
	case !m.Status:
		s = "no status reply"
	case !m.Ready:
		s = "NOT READY: " + printable.Cut(m.ReadyError, maxMessage)
	case m.Impaired:
		s = "ready, impaired"
	case !m.FastPath:
		s = "ready, crash fast path off"
	}
	if !m.PeersAnswered {
		s += ", no peers reply"
	}
	if m.Truncated {
		s += ", peers truncated"
	}
	return s
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

// count says "1 peer" or "2 peers", "1 reply" or "2 replies".
func count(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "y"):
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
