package monitor

// Tests of restarts, and of two processes claiming one id.

import (
	"testing"
	"time"
)

func TestRestartAndConflict(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.advance(sec)
	h.beat("a", "b2", sec)
	evs := h.drain()
	if len(evs) != 1 || !evs[0].Restart || evs[0].PrevBoot != "b1" || evs[0].Boot != "b2" || evs[0].Reason != ReasonRestarted {
		t.Fatalf("restart events = %+v", evs)
	}
	// b1 comes back: two processes claim "a". One conflict event, no
	// stream of restarts.
	for range 20 {
		h.advance(500 * time.Millisecond)
		h.beat("a", "b1", sec)
		h.beat("a", "b2", sec)
	}
	h.drain()
	evs = h.evs[2:] // after first_beat and the restart
	conflicts, restarts := 0, 0
	for _, e := range evs {
		if e.Conflict {
			conflicts++
		}
		if e.Restart {
			restarts++
		}
	}
	if conflicts != 1 || restarts != 0 {
		t.Fatalf("flip-flopping boots gave %d conflict and %d restart events, want 1 and 0: %+v", conflicts, restarts, evs)
	}
	if h.tab.st.conflicts == 0 {
		t.Error("conflict beats not counted")
	}
	h.wantState("a", StateAlive)
}

// Two processes hold one id; one of them leaves or dies. The other must
// then hold the id alone: alive while it beats, and reported dead when it
// dies, whichever of the two was the current boot.
func TestConflictOneProcessGoes(t *testing.T) {
	// survivor beats alone for 10 intervals, then dies; the id must stay
	// alive throughout and then be reported dead.
	survives := func(t *testing.T, h *harness, survivor string) {
		t.Helper()
		for range 10 {
			h.advance(sec)
			if r := h.beat("a", survivor, sec); r != "" {
				t.Fatalf("beat from %s rejected: %s", survivor, r)
			}
			h.wantState("a", StateAlive)
		}
		if got := h.tab.peersBoot("a"); got != survivor {
			t.Errorf("current boot %q, want the survivor %q", got, survivor)
		}
		in := h.tab.info(mustPeek(t, h, "a"), h.tab.vnow(h.now))
		if age := h.now.Sub(in.LastBeat); age > sec {
			t.Errorf("last beat %v ago, want the survivor's, under an interval", age)
		}
		if n := h.count("a", StateLeft); n != 0 {
			t.Errorf("%d left events while a process still held the id", n)
		}
		h.advance(10 * sec)
		h.wantState("a", StateDead)
	}
	for _, tc := range []struct {
		name     string
		goodbye  string // the boot that says goodbye; "" if it just dies
		survivor string
	}{
		{"current boot says goodbye", "b2", "b1"},
		{"current boot dies", "", "b1"},
		{"other boot says goodbye", "b1", "b2"},
		{"other boot dies", "", "b2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := twin(t)
			if tc.goodbye != "" {
				h.goodbye("a", tc.goodbye)
			}
			survives(t, h, tc.survivor)
			if p := mustPeek(t, h, "a"); tc.goodbye != "" && p.conflict {
				t.Error("conflict still flagged after one process left")
			}
		})
	}
}

// Two processes hold one id and both stop with a goodbye, in either
// order, as when a duplicated deployment is shut down: the id has left,
// and must be reported left, never dead.
func TestConflictBothProcessesLeave(t *testing.T) {
	for _, order := range [][2]string{{"b2", "b1"}, {"b1", "b2"}} { // b2 is the current boot
		t.Run(order[0]+" then "+order[1], func(t *testing.T) {
			h := twin(t)
			h.goodbye("a", order[0])
			h.advance(sec / 10)
			h.goodbye("a", order[1])
			h.wantState("a", StateLeft)
			h.advance(10 * sec)
			h.wantState("a", StateLeft)
			if n := h.count("a", StateLeft); n != 1 {
				t.Errorf("%d left events, want 1: %v", n, h.evs)
			}
			if n := h.count("a", StateDead) + h.count("a", StateSuspect); n != 0 {
				t.Errorf("%d suspect or dead events after both processes said goodbye: %v", n, h.evs)
			}
		})
	}
}

// twin starts a conflict: b1 beats, b2 takes over as a restart, and both
// keep beating half an interval apart. Its events so far are dropped.
func twin(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.advance(500 * time.Millisecond)
	h.beat("a", "b2", sec)
	for range 4 {
		h.advance(500 * time.Millisecond)
		h.beat("a", "b1", sec)
		h.advance(500 * time.Millisecond)
		h.beat("a", "b2", sec)
	}
	if p, _ := h.tab.peers.peek("a"); !p.conflict || p.boot != "b2" {
		t.Fatalf("setup: conflict %v boot %q, want a conflict with b2 current", p.conflict, p.boot)
	}
	h.drain()
	h.evs = nil
	return h
}

// goodbye sends the next beat of id/boot as a goodbye; it must be
// accepted.
func (h *harness) goodbye(id, boot string) {
	h.t.Helper()
	key := id + "/" + boot
	h.seqs[key]++
	if r := h.tab.observe(id, rawBeat(id, boot, h.seqs[key], sec, true), h.now); r != "" {
		h.t.Fatalf("goodbye from %s/%s rejected: %s", id, boot, r)
	}
}

func mustPeek(t *testing.T, h *harness, id string) *peer {
	t.Helper()
	p, ok := h.tab.peers.peek(id)
	if !ok {
		t.Fatalf("%s not in the table", id)
	}
	return p
}
