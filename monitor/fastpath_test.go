package monitor

import (
	"fmt"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

const (
	ms     = time.Millisecond
	window = 350 * ms // hbmesh's reconnect window without TLS
)

// fastHarness is a harness whose monitor has observed long enough for
// advisories to count, with one peer "a" beating every iv.
func fastHarness(t *testing.T, iv time.Duration, mod func(*Config)) *harness {
	h := newHarness(t, mod)
	h.tab.seeingFrom = h.tab.vnow(h.now)
	h.beat("a", "b1", iv)
	for settled := time.Duration(0); settled < h.cfg.FastPathSettle; {
		step := min(iv, h.cfg.FastPathSettle-settled)
		h.advance(step)
		settled += step
		if step == iv {
			h.beat("a", "b1", iv)
		}
	}
	h.advance(10 * ms) // the advisory comes after the last beat
	if h.state("a") != StateAlive || len(h.tab.probes) != 0 {
		t.Fatalf("setup: a is %v, probes %v", h.state("a"), h.tab.probes)
	}
	h.drain()
	return h
}

// advisory delivers a DISCONNECT advisory for id's connection.
func (h *harness) advisory(id, reason string, reconnect time.Duration) string {
	return h.tab.advisory(wire.NodeConn{Prefix: wire.DefaultPrefix, ID: id, Reconnect: reconnect}, reason, 0, h.now)
}

// confirms returns the check probes the sweeps asked for, and forgets them.
func (h *harness) confirms() []string {
	c := h.tab.confirms
	h.tab.confirms = nil
	return c
}

func (h *harness) checks(outcome string) uint64 {
	return h.tab.st.checks[indexOf(checkOutcomes[:], outcome)]
}

func (h *harness) wantChecks(alive, dead, fallback uint64) {
	h.t.Helper()
	if a, d, f := h.checks(checkAlive), h.checks(checkDead), h.checks(checkFallback); a != alive || d != dead || f != fallback {
		h.t.Fatalf("checks alive/dead/fallback = %d/%d/%d, want %d/%d/%d", a, d, f, alive, dead, fallback)
	}
}

// TestFastPathCrash: the advisory, the window, one probe, no responders:
// dead with reason disconnected, at the window and margin after the
// advisory, at any interval.
func TestFastPathCrash(t *testing.T) {
	for _, iv := range []time.Duration{sec, 10 * sec, time.Hour} {
		t.Run(iv.String(), func(t *testing.T) {
			h := fastHarness(t, iv, nil)
			at := h.now
			if r := h.advisory("a", "Client Closed", window); r != advChecked {
				t.Fatalf("advisory: %s", r)
			}
			due := window + h.cfg.DisconnectMargin
			h.advance(due - h.cfg.Resolution)
			if c := h.confirms(); len(c) != 0 {
				t.Fatalf("probe %v before the window passed", c)
			}
			h.advance(h.cfg.Resolution)
			if c := h.confirms(); len(c) != 1 || c[0] != "a" {
				t.Fatalf("confirms = %v, want one probe of a at the window", c)
			}
			h.wantState("a", StateAlive)
			h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now)
			h.drain()
			h.wantState("a", StateDead)
			ev := h.evs[len(h.evs)-1]
			if ev.Reason != ReasonDisconnected || ev.Prev != StateAlive || ev.Time.Sub(at) != due {
				t.Fatalf("dead event %+v, want reason disconnected %v after the advisory", ev, due)
			}
			h.wantChecks(0, 1, 0)
			if len(h.tab.checks) != 0 || h.tab.peers.len() != 1 {
				t.Fatalf("%d checks open, %d peers", len(h.tab.checks), h.tab.peers.len())
			}
			// Dead is dead: a later advisory changes nothing; its next
			// incarnation is alive.
			if r := h.advisory("a", "Client Closed", window); r != advNotAlive {
				t.Fatalf("advisory for a dead peer: %s", r)
			}
			h.beat("a", "b2", iv)
			h.drain()
			h.wantState("a", StateAlive)
		})
	}
}

// TestFastPathWaitByReason: a check waits the window and the margin
// after the advisory, and, after a read or write error, which a reset
// that reached the server alone also gives, the peer's interval first:
// the live node learns of such a reset only at its next beat.
func TestFastPathWaitByReason(t *testing.T) {
	for _, tc := range []struct {
		reason   string
		interval bool // the check waits the peer's interval too
	}{
		{"Client Closed", false},
		{"Kicked", false},
		{"Read Error", true},
		{"Write Error", true},
	} {
		for _, iv := range []time.Duration{sec, 10 * sec} {
			t.Run(fmt.Sprintf("%s/%v", tc.reason, iv), func(t *testing.T) {
				h := fastHarness(t, iv, nil)
				at := h.now
				if r := h.advisory("a", tc.reason, window); r != advChecked {
					t.Fatalf("advisory: %s", r)
				}
				due := window + h.cfg.DisconnectMargin
				if tc.interval {
					due += iv
				}
				for h.now.Sub(at) < due-h.cfg.Resolution {
					h.advance(min(100*ms, due-h.cfg.Resolution-h.now.Sub(at)))
					if c := h.confirms(); len(c) != 0 {
						t.Fatalf("probe %v at +%v, before +%v", c, h.now.Sub(at), due)
					}
				}
				h.advance(h.cfg.Resolution)
				if c := h.confirms(); len(c) != 1 || c[0] != "a" {
					t.Fatalf("confirms = %v at +%v, want one probe of a at +%v", c, h.now.Sub(at), due)
				}
				h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now)
				h.drain()
				if ev := h.evs[len(h.evs)-1]; ev.State != StateDead || ev.Reason != ReasonDisconnected || ev.Time.Sub(at) != due {
					t.Fatalf("event %+v, want dead, disconnected, %v after the advisory", ev, due)
				}
			})
		}
	}
}

// TestFastPathNoFalseDeath: everything that can happen to a live node
// after its connection ended ends the check without a verdict.
func TestFastPathNoFalseDeath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		run     func(h *harness, due time.Duration)
		outcome string
	}{
		{"beat within the window", func(h *harness, due time.Duration) {
			h.advance(window - 10*ms)
			h.beat("a", "b1", sec)
			h.advance(due)
		}, checkAlive},
		{"beat as the window ends, before the probe is judged", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			h.beat("a", "b1", sec)
			h.tab.taken++ // the beat was judged
			h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now)
		}, checkAlive},
		{"beat queued before the no-responders reply", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			// The beat reached the monitor before the reply did, but the
			// beat goroutine has not judged it yet.
			h.tab.confirmNoResponders("a", h.tab.taken+1, 0, h.now)
			h.advance(5 * h.cfg.Resolution)
			h.wantState("a", StateAlive)
			h.beat("a", "b1", sec)
			h.tab.taken++
			h.advance(h.cfg.Resolution)
		}, checkAlive},
		{"probe answered", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			h.tab.confirmAnswered("a", []byte("b1"), h.now)
		}, checkAlive},
		{"probe answered by a new boot", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			h.tab.confirmAnswered("a", []byte("b2"), h.now)
		}, checkAlive},
		{"restarted within the window", func(h *harness, due time.Duration) {
			h.advance(100 * ms)
			h.beat("a", "b2", sec)
			h.advance(due)
		}, checkAlive},
		{"goodbye within the window", func(h *harness, due time.Duration) {
			h.advance(100 * ms)
			h.seqs["a/b1"]++
			h.tab.observe("a", rawBeat("a", "b1", h.seqs["a/b1"], sec, true), h.now)
			h.advance(due)
		}, checkAlive},
		{"probe unanswered", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			h.advance(h.cfg.ConfirmTimeout)
		}, checkFallback},
		{"probe not sent", func(h *harness, due time.Duration) {
			h.advance(due)
			h.tab.confirmFailed(h.confirms()[0])
		}, checkFallback},
		{"monitor disconnected during the window", func(h *harness, due time.Duration) {
			h.advance(100 * ms)
			h.tab.setImpaired(true, h.now)
			h.advance(100 * ms)
			h.tab.setImpaired(false, h.now)
			h.advance(due)
			if c := h.confirms(); len(c) != 0 {
				h.t.Fatalf("probe %v after the monitor's own outage", c)
			}
		}, checkFallback},
		{"monitor disconnected while the probe was out", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			h.tab.setImpaired(true, h.now)
			h.tab.setImpaired(false, h.now)
			h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now)
		}, checkFallback},
		{"monitor stalled during the window", func(h *harness, due time.Duration) {
			h.advance(100 * ms)
			h.now = h.now.Add(2 * sec) // unswept: the next sweep sees a stall
			h.advance(due)
		}, checkFallback},
		{"monitor dropped beats during the window", func(h *harness, due time.Duration) {
			h.advance(100 * ms)
			h.tab.graceFrom = h.tab.vnow(h.now) // what the Run loop does on a drop
			h.advance(due)
		}, checkFallback},
		{"monitor reconnected before its loop heard of it", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			// The reply came over the monitor's connection after nats.go
			// re-established it (maybe to a server that does not know the
			// cluster's subscriptions yet), before the Run loop took the
			// status change: the connection's own count says so.
			h.tab.confirmNoResponders("a", h.tab.taken, 1, h.now)
		}, checkFallback},
		{"beats backlogged at the no-responders reply", func(h *harness, due time.Duration) {
			h.advance(due)
			h.confirms()
			h.tab.backlogged = true
			h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now)
			h.tab.backlogged = false
		}, checkFallback},
	} {
		for _, reason := range []string{"Client Closed", "Read Error"} {
			t.Run(tc.name+"/"+reason, func(t *testing.T) {
				h := fastHarness(t, sec, nil)
				if r := h.advisory("a", reason, window); r != advChecked {
					t.Fatalf("advisory: %s", r)
				}
				due := window + h.cfg.DisconnectMargin
				if fastPathReasons[reason] {
					due += sec
				}
				tc.run(h, due)
				h.drain()
				if h.count("a", StateDead) != 0 {
					t.Fatalf("a convicted: %v", h.evs)
				}
				if h.checks(tc.outcome) != 1 || len(h.tab.checks) != 0 {
					t.Fatalf("outcomes %v, %d open; want one %s", h.tab.st.checks, len(h.tab.checks), tc.outcome)
				}
			})
		}
	}
}

// TestFastPathFallbackKeepsTimeoutPath: a check that proves nothing
// leaves the peer to the timeout path, which convicts as it always did.
func TestFastPathFallbackKeepsTimeoutPath(t *testing.T) {
	h := fastHarness(t, sec, nil)
	h.advisory("a", "Client Closed", window)
	h.advance(window + h.cfg.DisconnectMargin)
	h.confirms() // sent, never answered
	h.advance(h.cfg.ConfirmTimeout)
	h.wantChecks(0, 0, 1)
	h.wantState("a", StateAlive)
	h.advance(3 * sec)
	h.wantState("a", StateDead)
	if ev := h.evs[len(h.evs)-1]; ev.Reason != ReasonTimeout {
		t.Fatalf("dead event %+v, want reason timeout", ev)
	}
}

// TestFastPathTimeoutFirst: when the timeout path convicts first, the
// check ends as a fallback and leaves nothing behind.
func TestFastPathTimeoutFirst(t *testing.T) {
	h := fastHarness(t, 100*ms, func(c *Config) { c.MinInterval = 100 * ms })
	h.advisory("a", "Client Closed", 2*sec)
	h.advance(400 * ms)
	h.wantState("a", StateDead)
	h.wantChecks(0, 0, 1)
	if len(h.tab.checks) != 0 || h.state("a") != StateDead {
		t.Fatalf("%d checks open", len(h.tab.checks))
	}
	h.advance(3 * sec)
	if c := h.confirms(); len(c) != 0 {
		t.Fatalf("probe %v for a peer already dead", c)
	}
}

// TestFastPathSuspectAnswers: a suspect peer that answers the check probe
// is alive again, as after a suspect probe.
func TestFastPathSuspectAnswers(t *testing.T) {
	h := fastHarness(t, sec, nil)
	h.advance(2 * sec)
	h.wantState("a", StateSuspect)
	h.tab.probes = nil
	h.advisory("a", "Client Closed", window)
	h.advance(window + h.cfg.DisconnectMargin)
	h.confirms()
	h.tab.confirmAnswered("a", []byte("b1"), h.now)
	h.drain()
	h.wantState("a", StateAlive)
	if ev := h.evs[len(h.evs)-1]; ev.Reason != ReasonProbeAnswered {
		t.Fatalf("event %+v", ev)
	}
	h.wantChecks(1, 0, 0)
}

// TestFastPathSuspectConvicted: a suspect peer can be convicted by the
// fast path before its dead timeout.
func TestFastPathSuspectConvicted(t *testing.T) {
	h := fastHarness(t, sec, nil)
	h.advance(2 * sec)
	h.wantState("a", StateSuspect)
	h.advisory("a", "Client Closed", window)
	h.advance(window + h.cfg.DisconnectMargin)
	h.confirms()
	h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now)
	h.drain()
	h.wantState("a", StateDead)
	if ev := h.evs[len(h.evs)-1]; ev.Reason != ReasonDisconnected || ev.Prev != StateSuspect {
		t.Fatalf("event %+v", ev)
	}
}

// TestFastPathAdvisoryResults: what is not a live peer's crash starts no
// check.
func TestFastPathAdvisoryResults(t *testing.T) {
	h := fastHarness(t, sec, nil)
	h.beat("gone", "g", sec)
	h.seqs["gone/g"]++
	h.tab.observe("gone", rawBeat("gone", "g", h.seqs["gone/g"], sec, true), h.now)
	for _, tc := range []struct {
		nc     wire.NodeConn
		reason string
		want   string
	}{
		{wire.NodeConn{Prefix: "other", ID: "a"}, "Client Closed", advOtherPrefix},
		{wire.NodeConn{Prefix: "hb", ID: "nobody"}, "Client Closed", advUnknownPeer},
		{wire.NodeConn{Prefix: "hb", ID: "gone"}, "Client Closed", advNotAlive},
		{wire.NodeConn{Prefix: "hb", ID: "a"}, "Stale Connection", advReason},
		{wire.NodeConn{Prefix: "hb", ID: "a"}, "Slow Consumer (Write Deadline)", advReason},
		{wire.NodeConn{Prefix: "hb", ID: "a"}, "Slow Consumer (Pending Bytes)", advReason},
		{wire.NodeConn{Prefix: "hb", ID: "a"}, "Some Future Reason", advReason},
		// The server is going away, not the node, whose return depends on
		// another server being up rather than on its window.
		{wire.NodeConn{Prefix: "hb", ID: "a"}, "Server Shutdown", advReason},
	} {
		if got := h.tab.advisory(tc.nc, tc.reason, 0, h.now); got != tc.want {
			t.Errorf("advisory %+v %q = %s, want %s", tc.nc, tc.reason, got, tc.want)
		}
	}
	if len(h.tab.checks) != 0 {
		t.Fatalf("%d checks open", len(h.tab.checks))
	}

	// Settling: right after the monitor's observation (re)starts, and
	// while it is impaired or backlogged, advisories are not acted on.
	h.tab.setImpaired(true, h.now)
	if got := h.advisory("a", "Client Closed", window); got != advUnsettled {
		t.Errorf("impaired: %s", got)
	}
	h.tab.setImpaired(false, h.now)
	if got := h.advisory("a", "Client Closed", window); got != advUnsettled {
		t.Errorf("just reconnected: %s", got)
	}
	h.beat("a", "b1", sec)
	h.advance(h.cfg.FastPathSettle)
	h.tab.backlogged = true
	if got := h.advisory("a", "Client Closed", window); got != advUnsettled {
		t.Errorf("backlogged: %s", got)
	}
	h.tab.backlogged = false
	if got := h.advisory("a", "Client Closed", window); got != advChecked {
		t.Errorf("settled: %s", got)
	}
}

// TestFastPathNeverBroughtForward: a second advisory for a peer restarts
// its check from the later advisory, but never makes it come sooner, so
// a name that announces a shorter window cannot hurry a verdict on a node
// still within its own.
func TestFastPathNeverBroughtForward(t *testing.T) {
	h := fastHarness(t, sec, nil)
	first := h.now
	h.advisory("a", "Client Closed", 2*sec)
	h.advance(100 * ms)
	h.advisory("a", "Client Closed", 0)
	h.advance(2*sec - 100*ms + h.cfg.DisconnectMargin - h.cfg.Resolution)
	if c := h.confirms(); len(c) != 0 {
		t.Fatalf("probe %v before the first advisory's window passed", c)
	}
	h.advance(h.cfg.Resolution)
	if c := h.confirms(); len(c) != 1 || h.now.Sub(first) != 2*sec+h.cfg.DisconnectMargin {
		t.Fatalf("confirms = %v at +%v", c, h.now.Sub(first))
	}
	// A beat between the two advisories does not count for the second.
	h2 := fastHarness(t, sec, nil)
	h2.advisory("a", "Client Closed", window)
	h2.advance(100 * ms)
	h2.beat("a", "b1", sec)
	h2.advance(100 * ms)
	h2.advisory("a", "Client Closed", window)
	h2.advance(window + h2.cfg.DisconnectMargin)
	if c := h2.confirms(); len(c) != 1 {
		t.Fatalf("confirms = %v: the second disconnect must be checked", c)
	}
	h2.tab.confirmNoResponders("a", h2.tab.taken, 0, h2.now)
	h2.drain()
	h2.wantState("a", StateDead)
}

// TestFastPathStaleReplies: replies that do not belong to the open
// round change nothing.
func TestFastPathStaleReplies(t *testing.T) {
	h := fastHarness(t, sec, nil)
	h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now) // no check open
	h.tab.confirmAnswered("a", []byte("b1"), h.now)
	h.advisory("a", "Client Closed", window)
	h.tab.confirmNoResponders("a", h.tab.taken, 0, h.now) // the probe is not out yet
	h.drain()
	h.wantState("a", StateAlive)
	if len(h.tab.checks) != 1 || h.tab.checks[mustPeer(h, "a")].stage != stageWait {
		t.Fatal("a stale reply moved the check on")
	}
}

func mustPeer(h *harness, id string) *peer {
	p, ok := h.tab.peers.peek(id)
	if !ok {
		h.t.Fatalf("no peer %s", id)
	}
	return p
}

// TestFastPathEvictionEndsCheck: a peer evicted from a full table takes
// its check with it.
func TestFastPathEvictionEndsCheck(t *testing.T) {
	h := fastHarness(t, sec, func(c *Config) { c.MaxPeers = 1 })
	h.advisory("a", "Client Closed", window)
	h.beat("b", "b1", sec) // the table holds one peer: a, established, goes
	if h.state("a") != StateUnknown {
		t.Fatal("a was not evicted")
	}
	if len(h.tab.checks) != 0 || h.checks(checkFallback) != 1 {
		t.Fatalf("%d checks open, outcomes %v", len(h.tab.checks), h.tab.st.checks)
	}
}

// TestFastPathAdvisoryFloodBounded: a flood of advisories, forged or
// real, for known peers and unknown ids alike, keeps at most one check
// per known peer, asks for at most one probe per peer and window, and
// convicts no one who answers.
func TestFastPathAdvisoryFloodBounded(t *testing.T) {
	h := fastHarness(t, sec, nil)
	peers := []string{"a"}
	for i := range 9 {
		id := fmt.Sprintf("p%d", i)
		h.beat(id, "b1", sec)
		peers = append(peers, id)
	}
	due := window + h.cfg.DisconnectMargin
	probes := map[string]int{}
	for round := range 100 {
		for _, id := range peers {
			h.advisory(id, "Client Closed", window)
		}
		for i := range 100 {
			h.advisory(fmt.Sprintf("ghost-%d-%d", round, i), "Client Closed", 0)
		}
		if len(h.tab.checks) > len(peers) {
			t.Fatalf("round %d: %d checks open for %d peers", round, len(h.tab.checks), len(peers))
		}
		h.advance(due / 10)
		for _, id := range h.confirms() {
			probes[id]++
			h.tab.confirmAnswered(id, []byte("b1"), h.now)
		}
		if round%10 == 9 { // the peers beat on
			for _, id := range peers {
				h.beat(id, "b1", sec)
			}
		}
	}
	h.drain()
	for _, id := range peers {
		if h.count(id, StateDead) != 0 {
			t.Fatalf("%s convicted: %v", id, h.evs)
		}
		// The flood never lets the window pass, so no probe goes out.
		if probes[id] != 0 {
			t.Errorf("%s probed %d times while advisories kept coming", id, probes[id])
		}
	}
	if h.tab.peers.len() != len(peers) {
		t.Fatalf("%d peers in the table, want %d: unknown ids were added", h.tab.peers.len(), len(peers))
	}
}
