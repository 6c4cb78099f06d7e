package monitor

// Tests of seeding the table from restart memory.

import (
	"testing"
	"time"
)

func TestRestoreGrace(t *testing.T) {
	h := newHarness(t, nil)
	h.advance(time.Minute)
	h.tab.restore([]PeerInfo{
		{ID: "gone", Host: "host-gone", State: StateAlive, Boot: "b", Seq: 9, Interval: sec},
		{ID: "back", Host: "host-back", State: StateAlive, Boot: "b", Seq: 9, Interval: sec},
		{ID: "bad.id", State: StateAlive, Interval: sec},
	}, h.now)
	if h.tab.peers.len() != 2 {
		t.Fatalf("restored %d peers, want 2", h.tab.peers.len())
	}
	if n := h.tab.restore([]PeerInfo{
		{ID: "no-interval", State: StateAlive},
		{ID: "no-state", Interval: sec},
		{ID: "ok", State: StateLeft, Interval: sec},
	}, h.now); n != 2 {
		t.Errorf("restore skipped %d entries, want 2 (no interval, no state)", n)
	}
	for seq := uint64(10); seq < 14; seq++ {
		h.advance(sec)
		h.tab.observe("back", rawBeat("back", "b", seq, sec, false), h.now)
	}
	h.wantState("gone", StateDead)
	h.wantState("back", StateAlive)
	// A replayed seq from before the restart is still refused.
	if r := h.tab.observe("back", rawBeat("back", "b", 9, sec, false), h.now); r != rejReplay {
		t.Errorf("replay after restore: %q", r)
	}
}

// A restored peer keeps the times it was saved with: how long it has
// been in its state, when it last beat, and so when a dead one is
// forgotten.
func TestRestoreKeepsTimes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Retention = time.Hour })
	h.advance(time.Minute)
	died, last := h.now.Add(-50*time.Minute), h.now.Add(-50*time.Minute-3*sec)
	h.tab.restore([]PeerInfo{
		{ID: "dead", Host: "h", State: StateDead, Reason: ReasonDisconnected, Boot: "b", Seq: 9, Interval: sec, Since: died, LastBeat: last},
		{ID: "old", Host: "h", State: StateAlive, Boot: "b", Seq: 9, Interval: sec}, // a record without times
		{ID: "future", Host: "h", State: StateLeft, Boot: "b", Seq: 9, Interval: sec, Since: h.now.Add(time.Hour)},
	}, h.now)
	v := h.tab.vnow(h.now)
	in := h.tab.info(mustPeek(t, h, "dead"), v)
	if !in.Since.Equal(died) || !in.LastBeat.Equal(last) || !in.LastSeen.Equal(last) || in.Reason != ReasonDisconnected {
		t.Errorf("dead: since %v last beat %v last seen %v reason %q, want %v and %v, disconnected", in.Since, in.LastBeat, in.LastSeen, in.Reason, died, last)
	}
	if in := h.tab.info(mustPeek(t, h, "old"), v); !in.Since.Equal(h.now) || !in.LastBeat.IsZero() {
		t.Errorf("record without times: since %v last beat %v, want now and zero", in.Since, in.LastBeat)
	}
	if in := h.tab.info(mustPeek(t, h, "future"), v); !in.Since.Equal(h.now) {
		t.Errorf("since in the future: restored as %v, want now", in.Since)
	}
	// Dead 50 minutes with a one-hour retention: forgotten 10 minutes on,
	// not an hour.
	h.advance(11 * time.Minute)
	if _, ok := h.tab.peers.peek("dead"); ok {
		t.Error("a peer dead for 61 minutes is still kept with a one-hour retention")
	}
}
