package monitor

import (
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// restore seeds the table with peers remembered from before a restart. It
// returns how many entries it skipped: an invalid id, an interval out of
// range, or a state other than alive, suspect, dead and left.
func (t *table) restore(infos []PeerInfo, now time.Time) (skipped int) {
	v := t.vnow(now)
	t.graceFrom = max(t.graceFrom, v)
	for i := range infos {
		in := &infos[i]
		if wire.ValidateID(in.ID) != nil || in.Interval < t.cfg.MinInterval || in.Interval > t.cfg.MaxInterval {
			skipped++
			continue
		}
		st := in.State
		switch st {
		case StateAlive, StateSuspect:
			st = StateAlive
		case StateDead, StateLeft:
		default:
			skipped++
			continue
		}
		p := &peer{
			id: in.ID, host: in.Host, boot: in.Boot, version: in.Version, seq: in.Seq,
			interval: in.Interval, rtt: in.ProbeRTT, pid: int32(in.PID), state: st,
			since: t.past(in.Since, now, v), hidx: -1, reason: reasonCode(in.Reason),
		}
		if !in.LastBeat.IsZero() {
			p.lastBeat = t.past(in.LastBeat, now, v)
			p.lastHeard = p.lastBeat
		}
		if st != in.State {
			p.since = v // suspect restored as alive: a new state from now
			p.reason = 0
		}
		if len(in.Labels) > 0 {
			p.labels = string(wire.AppendLabels(nil, in.Labels))
		}
		if old, ok := t.peers.peek(p.id); ok {
			t.heap.remove(old)
			t.st.byState[old.state]--
			t.peers.remove(old.id)
		}
		t.peers.add(p, true)
		t.st.byState[st]++
		t.reschedule(p, v)
	}
	return skipped
}

// past converts a remembered wall-clock time to virtual time, given the
// clock reading now and its virtual time v. A zero time, or one in the
// future (a clock step since it was saved), counts as now. The result is
// never 0, which means "never" for lastBeat.
func (t *table) past(w, now time.Time, v int64) int64 {
	if w.IsZero() || w.After(now) {
		return v
	}
	if pv := v - int64(now.Sub(w)); pv != 0 {
		return pv
	}
	return -1
}
