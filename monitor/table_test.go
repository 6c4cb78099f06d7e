package monitor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// harness drives a table with explicit times: no clock, no sleeping.
type harness struct {
	t    *testing.T
	tab  *table
	cfg  Config
	now  time.Time
	seqs map[string]uint64
	evs  []Event
	// answer, if set, answers every probe the moment it is sent, as a live
	// peer on a fast network would.
	answer func(id string) bool
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &harness{t: t, cfg: cfg, now: start, seqs: map[string]uint64{}}
	h.tab = newTable(&h.cfg, start)
	h.tab.st.rtt = newHistogram(ProbeRTTBuckets())
	h.tab.st.overshoot = newHistogram(OvershootBuckets())
	return h
}

func rawBeat(id, boot string, seq uint64, iv time.Duration, leaving bool) *wire.RawBeat {
	return &wire.RawBeat{V: 1, ID: []byte(id), Host: []byte("host-" + id), Boot: []byte(boot),
		Seq: seq, IntervalMS: iv.Milliseconds(), Leaving: leaving}
}

// beat sends the next beat of id/boot and returns the rejection reason.
func (h *harness) beat(id, boot string, iv time.Duration) string {
	key := id + "/" + boot
	h.seqs[key]++
	return h.tab.observe(id, rawBeat(id, boot, h.seqs[key], iv, false), h.now)
}

// advance moves time forward in Resolution steps, sweeping as the
// monitor's loop would, and collects events.
func (h *harness) advance(d time.Duration) {
	end := h.now.Add(d)
	for h.now.Before(end) {
		step := min(h.cfg.Resolution, end.Sub(h.now))
		h.now = h.now.Add(step)
		h.tab.sweep(h.now)
		if h.answer != nil {
			for _, id := range h.tab.probes {
				if h.answer(id) {
					h.tab.probeAnswered(id, []byte(h.tab.peersBoot(id)), h.now)
				}
			}
			h.tab.probes = nil
		}
	}
	h.drain()
}

func (h *harness) drain() []Event {
	h.evs = append(h.evs, h.tab.events...)
	out := h.tab.events
	h.tab.events = nil
	// Every peer's snapshot names the reason of the last transition it
	// went through (a conflict event changes no state and no reason).
	last := map[string]Reason{}
	for _, e := range out {
		if e.Reason != ReasonConflict {
			last[e.ID] = e.Reason
		}
	}
	for id, r := range last {
		if p, ok := h.tab.peers.peek(id); ok {
			if got := h.tab.info(p, h.tab.vnow(h.now)).Reason; got != r {
				h.t.Errorf("%s: snapshot reason %q, want %q, its last transition's", id, got, r)
			}
		}
	}
	return out
}

func (h *harness) state(id string) State {
	p, ok := h.tab.peers.peek(id)
	if !ok {
		return StateUnknown
	}
	return p.state
}

func (h *harness) wantState(id string, want State) {
	h.t.Helper()
	if got := h.state(id); got != want {
		h.t.Fatalf("%s: state %v at +%v, want %v; events: %v", id, got, h.now.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), want, h.evs)
	}
}

func (h *harness) count(id string, st State) int {
	h.drain()
	n := 0
	for _, e := range h.evs {
		if e.ID == id && e.State == st {
			n++
		}
	}
	return n
}

const sec = time.Second

func TestFirstBeatAlive(t *testing.T) {
	h := newHarness(t, nil)
	if r := h.beat("a", "b1", sec); r != "" {
		t.Fatalf("rejected: %s", r)
	}
	evs := h.drain()
	if len(evs) != 1 || evs[0].State != StateAlive || evs[0].Prev != StateUnknown || evs[0].Reason != ReasonFirstBeat {
		t.Fatalf("events = %+v, want one first-beat alive event with empty prev", evs)
	}
}

func TestSilenceSuspectThenDead(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	beat := h.now
	h.advance(2*sec - 20*time.Millisecond)
	h.wantState("a", StateAlive)
	h.advance(30 * time.Millisecond)
	h.wantState("a", StateSuspect)
	if len(h.tab.probes) != 1 || h.tab.probes[0] != "a" {
		t.Fatalf("probes = %v, want exactly one probe to a", h.tab.probes)
	}
	h.advance(sec - 30*time.Millisecond)
	h.wantState("a", StateSuspect)
	h.advance(20 * time.Millisecond)
	h.wantState("a", StateDead)
	if h.tab.st.probesFailed != 1 {
		t.Errorf("probes failed = %d, want 1", h.tab.st.probesFailed)
	}
	last := h.evs[len(h.evs)-1]
	if last.Reason != ReasonTimeout || last.Prev != StateSuspect || last.Overshoot > h.cfg.Resolution {
		t.Errorf("dead event = %+v", last)
	}
	for _, ev := range h.evs {
		if !ev.LastBeat.Equal(beat) {
			t.Errorf("%s event: last beat %v, want %v", ev.State, ev.LastBeat, beat)
		}
	}
}

func TestProbeAnsweredReturnsAlive(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.advance(2 * sec)
	h.wantState("a", StateSuspect)
	h.advance(5 * time.Millisecond)
	if r := h.tab.probeAnswered("a", []byte("b1"), h.now); r != "" {
		t.Fatalf("probe answer rejected: %s", r)
	}
	h.wantState("a", StateAlive)
	if p, _ := h.tab.peers.peek("a"); p.rtt != 5*time.Millisecond {
		t.Errorf("rtt = %v, want 5ms", p.rtt)
	}
	// Beats stay lost but every probe is answered: never dead.
	for range 10 {
		h.advance(2*sec + 10*time.Millisecond)
		if h.state("a") == StateSuspect {
			h.tab.probeAnswered("a", []byte("b1"), h.now)
		}
		h.wantState("a", StateAlive)
	}
	if n := h.count("a", StateDead); n != 0 {
		t.Fatalf("%d dead events for a peer that answers probes", n)
	}
	// A reply from another boot or an unsolicited one does not count.
	if r := h.tab.probeAnswered("a", []byte("other"), h.now); r != rejProbeMismatch {
		t.Errorf("reply from another boot: %q", r)
	}
	if r := h.tab.probeAnswered("a", []byte("b1"), h.now); r != rejProbeUnsolicited {
		t.Errorf("unsolicited reply: %q", r)
	}
}

// TestRepeatTellsProbeRoundsApart: a peer whose beats are lost but whose
// probes are answered goes suspect and alive again and again at one seq;
// Repeat numbers those rounds, and a beat starts the count over.
func TestRepeatTellsProbeRoundsApart(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.drain()
	h.evs = nil
	for range 3 {
		h.advance(2*sec + 10*time.Millisecond)
		h.wantState("a", StateSuspect)
		if r := h.tab.probeAnswered("a", []byte("b1"), h.now); r != "" {
			t.Fatalf("probe answer rejected: %s", r)
		}
	}
	h.drain()
	var got []string
	for _, e := range h.evs {
		got = append(got, fmt.Sprintf("%s/%d/%d", e.State, e.Seq, e.Repeat))
	}
	want := []string{"suspect/1/0", "alive/1/0", "suspect/1/1", "alive/1/1", "suspect/1/2", "alive/1/2"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// A beat starts over; a later death is the first of its kind.
	h.evs = nil
	h.beat("a", "b1", sec)
	h.advance(5 * sec)
	h.wantState("a", StateDead)
	for _, e := range h.evs {
		if e.Repeat != 0 {
			t.Errorf("%v after a fresh beat: Repeat %d, want 0", e, e.Repeat)
		}
	}
}

func TestBeatRevivesSuspectAndDead(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.advance(2500 * time.Millisecond)
	h.wantState("a", StateSuspect)
	h.beat("a", "b1", sec)
	h.wantState("a", StateAlive)
	h.advance(4 * sec)
	h.wantState("a", StateDead)
	h.beat("a", "b1", sec)
	h.wantState("a", StateAlive)
	if e := h.drain(); len(e) != 1 || e[0].Prev != StateDead || e[0].Reason != ReasonBeat {
		t.Fatalf("revival events = %+v", e)
	}
}

func TestGoodbyeLeft(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	if r := h.tab.observe("a", rawBeat("a", "b1", 2, sec, true), h.now); r != "" {
		t.Fatal(r)
	}
	h.wantState("a", StateLeft)
	h.advance(10 * sec)
	h.wantState("a", StateLeft)
	if n := h.count("a", StateDead); n != 0 {
		t.Fatal("a peer that said goodbye was declared dead")
	}
}

func TestRejections(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	tests := []struct {
		name string
		b    *wire.RawBeat
		want string
	}{
		{"replay", rawBeat("a", "b1", 1, sec, false), rejReplay},
		{"interval too small", rawBeat("a", "b1", 5, time.Millisecond, false), rejInterval},
		{"interval too large", rawBeat("a", "b1", 5, 2*time.Hour, false), rejInterval},
		{"flood", rawBeat("a", "b1", 6, sec, false), rejFlood},
	}
	for _, tt := range tests {
		if got := h.tab.observe("a", tt.b, h.now); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	h.advance(500 * time.Millisecond)
	spoof := rawBeat("a", "b1", 7, sec, false)
	spoof.Host = []byte("evil")
	if got := h.tab.observe("a", spoof, h.now); got != rejHostMismatch {
		t.Errorf("host change within a boot: got %q", got)
	}
}

func TestImpairedSuspendsVerdicts(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 50 {
		h.beat("p"+strconv.Itoa(i), "b", sec)
	}
	h.advance(500 * time.Millisecond)
	h.tab.setImpaired(true, h.now)
	h.advance(30 * sec)
	for i := range 50 {
		h.wantState("p"+strconv.Itoa(i), StateAlive)
	}
	h.tab.setImpaired(false, h.now)
	// A full dead timeout of grace from reconnection: still alive just
	// before, dead after (nobody beat).
	h.advance(2*sec - 20*time.Millisecond)
	h.wantState("p0", StateAlive)
	h.advance(sec)
	h.wantState("p0", StateSuspect)
	h.advance(sec)
	h.wantState("p0", StateDead)
}

func TestStallExtendsDeadlines(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.advance(sec)
	// The monitor is frozen for 10s: the next sweep comes late.
	h.now = h.now.Add(10 * sec)
	h.tab.sweep(h.now)
	h.drain()
	h.wantState("a", StateAlive)
	if h.tab.st.stalls != 1 || h.tab.lastStall < 9*sec {
		t.Fatalf("stall not noticed: %d stalls, last %v", h.tab.st.stalls, h.tab.lastStall)
	}
	// The buffered beat arrives after the resume.
	h.beat("a", "b1", sec)
	h.advance(sec)
	h.wantState("a", StateAlive)
	// Without the beat it would still be judged after the extended deadline.
	h2 := newHarness(t, nil)
	h2.beat("a", "b1", sec)
	h2.advance(sec)
	h2.now = h2.now.Add(10 * sec)
	h2.advance(500 * time.Millisecond)
	h2.wantState("a", StateAlive)
	h2.advance(3 * sec)
	h2.wantState("a", StateDead)
}

// TestStallNoticedByBeatFirst guards against a stall counted
// twice: after a SIGSTOP, the beats queued during the stop may be handled
// before the sweep's late tick. The stall must be accounted for before
// they are stamped, or a node that died during the stop is convicted a
// whole stall late.
func TestStallNoticedByBeatFirst(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("victim", "b", sec)
	h.beat("other", "b", sec)
	h.advance(500 * time.Millisecond)
	// Frozen for 10s; the victim beat once more at the start of the freeze
	// and then died; that beat was queued and is handled first on resume.
	h.now = h.now.Add(10 * sec)
	h.beat("victim", "b", sec)
	resume := h.now
	for h.state("victim") != StateDead && h.now.Sub(resume) < 20*sec {
		h.advance(10 * time.Millisecond)
		if h.now.Sub(resume)%sec == 0 {
			h.beat("other", "b", sec)
		}
	}
	if took := h.now.Sub(resume); took > 3*sec+50*time.Millisecond {
		t.Fatalf("victim convicted %v after the resume, want about 3s (DeadAfter from its last beat)", took)
	}
	if h.tab.st.stalls != 1 {
		t.Errorf("stalls = %d, want 1", h.tab.st.stalls)
	}
	h.wantState("other", StateAlive)
}

func TestBacklogAfterStallIsNotAFlood(t *testing.T) {
	h := newHarness(t, nil)
	b := rawBeat("a", "b1", 1, sec, false)
	b.TS = h.now
	h.tab.observe("a", b, h.now)
	h.advance(sec)
	// Five beats queued during a stall arrive back to back; their sender
	// timestamps are an interval apart.
	for i := range 5 {
		q := rawBeat("a", "b1", uint64(2+i), sec, false)
		q.TS = h.now.Add(time.Duration(i) * sec)
		if r := h.tab.observe("a", q, h.now); r != "" {
			t.Fatalf("queued beat %d rejected as %q", 2+i, r)
		}
	}
	// A real flood: sender timestamps together too.
	for i := range 5 {
		q := rawBeat("a", "b1", uint64(10+i), sec, false)
		q.TS = h.now.Add(4 * sec)
		if r := h.tab.observe("a", q, h.now); r != rejFlood {
			t.Fatalf("flood beat %d: got %q, want %q", 10+i, r, rejFlood)
		}
	}
}

func TestRetentionForgets(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Retention = 10 * sec })
	h.beat("a", "b1", sec)
	h.advance(4 * sec)
	h.wantState("a", StateDead)
	h.advance(11 * sec)
	h.wantState("a", StateUnknown)
	if h.tab.st.forgotten != 1 || h.tab.st.evicted != 0 || h.tab.st.byState[StateDead] != 0 {
		t.Errorf("forgotten=%d evicted=%d deadGauge=%d", h.tab.st.forgotten, h.tab.st.evicted, h.tab.st.byState[StateDead])
	}
	if len(h.tab.forgot) != 1 || h.tab.forgot[0].id != "a" || h.tab.forgot[0].state != StateDead {
		t.Errorf("forgotten for the log: %+v, want a, dead", h.tab.forgot)
	}
}

func TestMaxPeersBoundsMemory(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPeers = 100 })
	// 60 established peers, all new at once (a cold start), each then
	// beating a second time.
	for i := range 60 {
		h.beat("real-"+strconv.Itoa(i), "b", sec)
	}
	h.advance(500 * time.Millisecond)
	for i := range 60 {
		if r := h.beat("real-"+strconv.Itoa(i), "b", sec); r != "" {
			t.Fatalf("second beat of real-%d rejected: %s", i, r)
		}
	}
	// A flood of ids that each beat once.
	for i := range 10_000 {
		h.beat("flood-"+strconv.Itoa(i), "b", sec)
	}
	if n := h.tab.peers.len(); n > 100 {
		t.Fatalf("table holds %d peers, want at most MaxPeers=100", n)
	}
	if len(h.tab.heap) > 100 {
		t.Fatalf("heap holds %d entries, want <= 100", len(h.tab.heap))
	}
	for i := range 60 {
		if h.state("real-"+strconv.Itoa(i)) != StateAlive {
			t.Fatalf("established peer real-%d was pushed out by the flood", i)
		}
	}
	total := 0
	for _, n := range h.tab.st.byState {
		total += n
	}
	if total != h.tab.peers.len() {
		t.Errorf("state gauges sum to %d, table holds %d", total, h.tab.peers.len())
	}
	if want := uint64(10_000 - 40); h.tab.st.evicted != want {
		t.Errorf("evicted = %d, want %d (the flood minus the 40 free slots)", h.tab.st.evicted, want)
	}
	if n := h.count("real-0", StateAlive); n != 1 {
		t.Errorf("real-0 has %d alive events, want exactly its first sighting", n)
	}
}

// TestColdStartOfAWholeFleet: every id is new at once, as when a monitor
// starts without memory. A fleet that fits in MaxPeers must settle with
// one first-sighting event per peer, not churn.
func TestColdStartOfAWholeFleet(t *testing.T) {
	const n = 1000
	h := newHarness(t, func(c *Config) { c.MaxPeers = n })
	for round := range 5 {
		for i := range n {
			h.beat("p"+strconv.Itoa(i), "b", sec)
			if i%100 == 99 {
				h.advance(100 * time.Millisecond)
			}
		}
		_ = round
	}
	h.drain()
	if len(h.evs) != n {
		t.Fatalf("%d events for a fleet of %d that fits in MaxPeers, want one first sighting each", len(h.evs), n)
	}
	if h.tab.st.evicted != 0 {
		t.Errorf("evicted %d peers of a fleet that fits", h.tab.st.evicted)
	}
}

func TestKnownPeerUpdateZeroAlloc(t *testing.T) {
	h := newHarness(t, nil)
	b := rawBeat("a", "b1", 1, sec, false)
	b.Version = []byte("v1")
	b.Labels = []byte(`{"k":"v"}`)
	h.tab.observe("a", b, h.now)
	allocs := testing.AllocsPerRun(1000, func() {
		b.Seq++
		// 200ms apart: over a tenth of the interval (not a flood) and under
		// the stall threshold (the sweep is not running in this test).
		h.now = h.now.Add(200 * time.Millisecond)
		if r := h.tab.observe("a", b, h.now); r != "" {
			t.Fatal(r)
		}
	})
	if allocs != 0 {
		t.Errorf("known-peer update allocates %v times, want 0", allocs)
	}
}

func TestBacklogDefersVerdicts(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	h.tab.backlogged = true // beats are queued, unread
	h.advance(10 * sec)
	h.wantState("a", StateAlive)
	if h.tab.st.deferred == 0 {
		t.Error("deferred sweeps not counted")
	}
	// The queued beat is read once the backlog is worked off.
	h.beat("a", "b1", sec)
	h.tab.backlogged = false
	h.advance(sec)
	h.wantState("a", StateAlive)
	h.advance(3 * sec)
	h.wantState("a", StateDead)
}

func TestLateSuspectStillGivesProbeTime(t *testing.T) {
	h := newHarness(t, nil)
	h.beat("a", "b1", sec)
	// The monitor is blind (impaired) past the whole dead timeout, then
	// sees again without any grace: the suspect verdict comes late, and
	// the probe must still get time before the dead one.
	h.tab.impaired = true
	h.advance(5 * sec)
	h.tab.impaired = false
	h.advance(h.cfg.Resolution)
	h.wantState("a", StateSuspect)
	h.advance(400 * time.Millisecond)
	h.wantState("a", StateSuspect)
	h.advance(200 * time.Millisecond)
	h.wantState("a", StateDead)
}

// TestSkewedClockIsIgnored: a node whose clock is hours off is judged
// exactly like one whose clock is right; only arrival times count.
func TestSkewedClockIsIgnored(t *testing.T) {
	verdicts := func(skew time.Duration) []string {
		h := newHarness(t, nil)
		for seq := uint64(1); seq <= 5; seq++ {
			b := rawBeat("a", "b", seq, sec, false)
			b.TS = h.now.Add(skew)
			if r := h.tab.observe("a", b, h.now); r != "" {
				t.Fatalf("skew %v: beat %d rejected: %s", skew, seq, r)
			}
			h.advance(sec)
		}
		h.advance(5 * sec)
		var out []string
		for _, e := range h.evs {
			out = append(out, e.Time.Sub(h.evs[0].Time).String()+" "+e.State.String())
		}
		return out
	}
	want := verdicts(0)
	for _, skew := range []time.Duration{-5 * time.Hour, 3 * time.Hour, 30 * 24 * time.Hour} {
		if got := verdicts(skew); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("clock skew %v changed the verdicts:\n got %v\nwant %v", skew, got, want)
		}
	}
	if len(want) != 3 { // alive, suspect, dead
		t.Fatalf("verdicts %v, want alive, suspect, dead", want)
	}
}

// TestClockSkew: a peer's skew is its beat's timestamp minus the arrival,
// beat by beat, stalls or not.
func TestClockSkew(t *testing.T) {
	h := newHarness(t, nil)
	for i, c := range []struct {
		skew  time.Duration
		stall time.Duration // the monitor stalls before this beat
	}{{1500 * time.Millisecond, 0}, {-200 * time.Millisecond, 0}, {40 * time.Millisecond, 3 * time.Second}} {
		h.advance(time.Second)
		h.now = h.now.Add(c.stall) // unswept: clockIn sees a stall
		b := rawBeat("web-1", "b1", uint64(i+1), time.Second, false)
		b.TS = h.now.Add(c.skew)
		if r := h.tab.observe("web-1", b, h.now); r != "" {
			t.Fatalf("beat %d rejected: %s", i, r)
		}
		p, _ := h.tab.peers.peek("web-1")
		if got := h.tab.info(p, h.tab.vnow(h.now)).ClockSkew; got != c.skew {
			t.Errorf("beat %d: skew %v, want %v", i, got, c.skew)
		}
	}
	if h.tab.st.stalls != 1 {
		t.Errorf("%d stalls noticed, want the one before the last beat", h.tab.st.stalls)
	}
}
