package monitor

import (
	"math"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// peer is one row of the table. Times are virtual nanoseconds (see
// table.vnow). The struct is kept small: strings are shared with the
// previous beat whenever the bytes are unchanged, labels stay raw JSON.
type peer struct {
	id, host, boot, version string
	labels                  string // raw JSON object, "" if none
	altBoot                 string // the boot before the current one

	seq, altSeq uint64
	interval    time.Duration
	rtt         time.Duration

	since     int64 // entered current state
	lastBeat  int64 // arrival of the last accepted beat (current boot)
	lastHeard int64 // last beat or probe answer, from any boot
	altHeard  int64 // last beat from altBoot
	probeSent int64 // 0: no probe outstanding
	due       int64 // heap key
	skew      int64 // sender ts minus arrival, ns
	lastTS    int64 // sender ts of the last beat, Unix ns; 0 if none
	histSlot  int64 // interval slot of history bit 0
	history   uint64

	// phi-accrual estimate of the normalised inter-arrival time, ns.
	mean, variance float64
	samples        uint32

	// key summarises id's place in natural order (see
	// peerTable.keyPrefix), so that Monitor.TopPeers mostly compares
	// numbers rather than ids.
	key uint64

	hidx     int32
	pid      int32
	state    State
	conflict bool
	// plain: id, host, boot and version are plain (wire.RawBeat.Plain),
	// so the next beat can be decoded with wire.Decoder.DecodeNext.
	plain bool
	// gone: the current boot said goodbye while altBoot was still beating
	// (two processes held the id); altBoot takes the id over at its next
	// beat, or, if its own goodbye comes first, the id has left.
	gone     bool
	promoted bool // out of probation (see peerTable)
	// checking: a crash fast-path check is open (table.checks).
	checking bool
	// cycles counts suspect → alive-by-probe rounds since the last
	// accepted beat (Event.Repeat), saturating; it fits the padding.
	cycles uint8
	// reason is why the peer entered its state, an index in reasons.
	reason uint8
}

// forgotPeer is a dead or left peer dropped after the retention.
type forgotPeer struct {
	id    string
	state State
	since time.Time
}

// table is the detector: the peer table, its deadlines and its counters.
// It does no I/O and reads no clock; Monitor feeds it times and carries out
// what it asks for (events to deliver, probes to send). It is not safe for
// concurrent use; Monitor guards it with a mutex.
type table struct {
	cfg   *Config
	peers *peerTable
	heap  deadlines

	epoch     time.Time     // clock reading that virtual time 0 stands for
	offset    time.Duration // total time the monitor spent stalled
	lastNow   time.Time     // latest clock reading seen by clockIn
	lastStall time.Duration // length of the latest stall, for the log
	graceFrom int64         // virtual time before which silence is not held against anyone
	impaired  bool          // observation is impaired: no verdicts
	// backlogged is set by the Run loop while more beats wait in the
	// subscription than MaxBacklog: silence is then not yet known to be
	// silence, so verdicts wait until the backlog is worked off.
	backlogged bool

	events []Event
	probes []string
	forgot []forgotPeer // dead and left peers forgotten, for the log

	// The crash fast path (fastpath.go): open checks, the ids whose check
	// probe is to be sent, since when the monitor has observed without a
	// break, and how many beat messages it has judged.
	checks     map[*peer]*check
	confirms   []string
	seeingFrom int64
	taken      int64

	zSuspect, zDead float64 // standard normal quantiles for the phi thresholds

	st counters
}

func newTable(cfg *Config, epoch time.Time) *table {
	// Virtual time starts at one second, so 0 can mean "never".
	t := &table{cfg: cfg, epoch: epoch.Add(-time.Second), checks: map[*peer]*check{}}
	t.peers = newPeerTable(cfg.MaxPeers, t.onEvict)
	// phi = -log10(P(a live peer is later than this)); for a normal model
	// that is the quantile z = Φ⁻¹(1-10^-phi) = √2·erfcinv(2·10^-phi).
	t.zDead = math.Sqrt2 * math.Erfcinv(2*math.Pow(10, -cfg.PhiThreshold))
	t.zSuspect = math.Sqrt2 * math.Erfcinv(2*math.Pow(10, -cfg.PhiThreshold/2))
	return t
}

// clockIn must be the first thing every entry point does with a fresh
// clock reading, under the monitor's lock. If no entry point has read the
// clock for longer than Resolution+StallThreshold, the whole monitor was
// stalled (the sweep alone ticks every Resolution), and every deadline is
// extended by the stall — once, by whichever goroutine notices first, so
// beats that were queued during the stall are not stamped before it is
// accounted for.
func (t *table) clockIn(now time.Time) {
	if gap := now.Sub(t.lastNow); !t.lastNow.IsZero() && gap > t.cfg.Resolution+t.cfg.StallThreshold {
		t.stalled(gap - t.cfg.Resolution)
	}
	if now.After(t.lastNow) {
		t.lastNow = now
	}
}

// vnow converts a clock reading to virtual time: nanoseconds since epoch,
// minus every stall the monitor noticed. Deadlines live in virtual time, so
// adding a stall to offset extends all of them at once, in O(1).
func (t *table) vnow(now time.Time) int64 { return int64(now.Sub(t.epoch) - t.offset) }

// wall converts virtual time back to a wall-clock time for display.
func (t *table) wall(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return t.epoch.Add(time.Duration(v) + t.offset)
}

func (t *table) onEvict(p *peer) {
	t.endCheck(p, checkFallback)
	t.heap.remove(p)
	t.st.byState[p.state]--
	t.st.evicted++
}

// schedule makes sure p is evaluated no later than due.
func (t *table) schedule(p *peer, due int64) {
	if p.hidx < 0 {
		p.due = due
		t.heap.push(p)
	} else if due < p.due {
		p.due = due
		t.heap.fix(int(p.hidx))
	}
}

// timeouts returns how long after its base a peer becomes suspect and dead.
func (t *table) timeouts(p *peer) (suspect, dead int64) {
	iv := float64(p.interval)
	if t.cfg.Detector == DetectorPhi && p.samples >= uint32(t.cfg.PhiWarmup) {
		sd := math.Max(math.Sqrt(p.variance), t.cfg.PhiMinStdDev*iv)
		base := p.mean + t.cfg.PhiPause*iv
		s := base + t.zSuspect*sd
		d := math.Max(base+t.zDead*sd, s+iv/4) // leave the probe time to answer
		return int64(s), int64(d)
	}
	return int64(t.cfg.SuspectAfter * iv), int64(t.cfg.DeadAfter * iv)
}

// deadDue is when a suspect peer is convicted: DeadAfter from its base,
// but never less than half the suspect-to-dead window after its probe went
// out, so a late suspect verdict still leaves the probe time to be
// answered. (Half, not all: a sweep tick's lateness in the suspect verdict
// must not be carried into the dead one.)
func (t *table) deadDue(p *peer, s, d int64) int64 {
	return max(t.base(p)+d, p.since+(d-s)/2)
}

// base is the moment silence is counted from.
func (t *table) base(p *peer) int64 { return max(p.lastHeard, t.graceFrom) }

func (t *table) emit(p *peer, to State, reason Reason, now time.Time) *Event {
	t.events = append(t.events, Event{
		Time: now, ID: p.id, Host: p.host, State: to, Prev: p.state,
		Reason: reason, Boot: p.boot, Seq: p.seq, Interval: p.interval,
		LastBeat: t.wall(p.lastBeat),
	})
	t.st.transitions[to]++
	return &t.events[len(t.events)-1]
}

func (t *table) transition(p *peer, to State, reason Reason, v int64, now time.Time) *Event {
	e := t.emit(p, to, reason, now)
	if to == StateSuspect || to == StateAlive {
		e.Repeat = int(p.cycles)
	}
	if p.state != StateUnknown {
		t.st.byState[p.state]--
	}
	t.st.byState[to]++
	p.state = to
	p.since = v
	p.reason = reasonCode(reason)
	return e
}

// observe applies one decoded beat whose subject named id. It returns the
// rejection reason, or "" if the beat was accepted.
func (t *table) observe(id string, b *wire.RawBeat, now time.Time) string {
	p, ok := t.peers.get(id)
	return t.observePeer(id, p, ok, b, now)
}

// sender is what p's next beat is expected to repeat, for
// wire.Decoder.DecodeNext; ok is false if p's strings are not plain.
func (p *peer) sender(s *wire.Sender) (ok bool) {
	if !p.plain {
		return false
	}
	*s = wire.Sender{ID: p.id, Host: p.host, Boot: p.boot, Version: p.version, Labels: p.labels,
		PID: int(p.pid), IntervalMS: int64(p.interval / time.Millisecond)}
	return true
}

// observePeer is observe for a caller that has looked id up already
// (peerTable.get): p and ok are what that found.
func (t *table) observePeer(id string, p *peer, ok bool, b *wire.RawBeat, now time.Time) string {
	t.clockIn(now)
	iv := time.Duration(b.IntervalMS) * time.Millisecond
	if iv < t.cfg.MinInterval || iv > t.cfg.MaxInterval {
		return rejInterval
	}
	v := t.vnow(now)
	if !ok {
		t.add(id, b, iv, v, now)
		return ""
	}
	if r := t.observeKnown(p, b, iv, v, now); r != "" {
		return r
	}
	t.peers.promote(p) // a second accepted beat: not a one-off id
	return ""
}

// observeKnown applies a beat from a peer already in the table.
func (t *table) observeKnown(p *peer, b *wire.RawBeat, iv time.Duration, v int64, now time.Time) string {
	switch {
	case string(b.Boot) == p.boot:
		if b.Seq <= p.seq {
			return rejReplay
		}
		if string(b.Host) != p.host {
			return rejHostMismatch
		}
		if b.Leaving && p.conflict && v-p.altHeard <= int64(2*iv) {
			// Two processes hold this id and the other one still beats:
			// this goodbye is one process leaving, not the id. The other
			// takes the id over at its next beat, so its own death is
			// still reported.
			p.seq, p.gone = b.Seq, true
			t.st.beats++
			return ""
		}
		// Beats closer together than a tenth of the interval, by arrival
		// and by the sender's own clock, are a flood. Beats that queued up
		// while the monitor (or the network) stalled arrive together too,
		// but their timestamps are an interval apart, so they count.
		if gap := int64(wire.MinBeatGap(iv)); !b.Leaving && p.lastBeat != 0 && v-p.lastBeat < gap &&
			(b.TS.IsZero() || p.lastTS == 0 || b.TS.UnixNano()-p.lastTS < gap) {
			return rejFlood
		}
		if p.conflict && v-p.altHeard > int64(10*iv) {
			p.conflict = false
		}
		t.update(p, b, iv, v, now)
	case p.altBoot != "" && string(b.Boot) == p.altBoot && v-p.altHeard <= int64(10*iv):
		// The previous boot is back: two processes claim this id.
		if b.Seq <= p.altSeq {
			return rejReplay
		}
		if b.Leaving {
			// The other process said goodbye: the current boot holds the
			// id alone again.
			p.altBoot, p.altSeq, p.conflict = "", 0, false
			t.st.beats++
			if p.gone {
				// ...but the current boot said goodbye already, waiting
				// for this one to take over: both processes have left,
				// so the id has.
				p.gone = false
				if p.state != StateLeft {
					t.transition(p, StateLeft, ReasonGoodbye, v, now)
				}
				t.reschedule(p, v)
			}
			return ""
		}
		if p.gone || v-p.lastBeat > int64(2*iv) {
			// The current boot said goodbye or has missed two beats while
			// this one beats on: this one holds the id now.
			t.takeOver(p, b, iv, v, now)
			break
		}
		p.altSeq, p.altHeard = b.Seq, v
		p.lastHeard = v
		t.st.conflicts++
		if !p.conflict {
			p.conflict = true
			e := t.emit(p, p.state, ReasonConflict, now)
			e.Conflict, e.PrevBoot, e.Boot = true, p.boot, p.altBoot
		}
		return ""
	default:
		t.restart(p, b, iv, v, now)
		return ""
	}
	t.st.beats++
	t.afterBeat(p, b, v, now)
	return ""
}

func (t *table) add(id string, b *wire.RawBeat, iv time.Duration, v int64, now time.Time) {
	p := &peer{id: id, hidx: -1, boot: string(b.Boot), host: string(b.Host), since: v}
	t.update(p, b, iv, v, now)
	t.peers.add(p, false)
	t.st.beats++
	if b.Leaving {
		t.transition(p, StateLeft, ReasonGoodbye, v, now)
		t.schedule(p, v+int64(t.cfg.Retention))
		return
	}
	t.transition(p, StateAlive, ReasonFirstBeat, v, now)
	s, _ := t.timeouts(p)
	t.schedule(p, v+s)
}

func (t *table) restart(p *peer, b *wire.RawBeat, iv time.Duration, v int64, now time.Time) {
	switchBoot(p, b)
	t.update(p, b, iv, v, now)
	t.st.beats++
	t.st.restarts++
	to := StateAlive
	if b.Leaving {
		to = StateLeft
	}
	e := t.transition(p, to, ReasonRestarted, v, now)
	e.Restart, e.PrevBoot = true, p.altBoot
	t.reschedule(p, v)
}

// takeOver makes altBoot, which b is from, the peer's current boot, and
// the current one the alternative. Unlike a restart it is not an event:
// the id was alive throughout, held by two processes.
func (t *table) takeOver(p *peer, b *wire.RawBeat, iv time.Duration, v int64, now time.Time) {
	conflict := p.conflict && !p.gone // a process that said goodbye left for good
	switchBoot(p, b)
	p.conflict = conflict
	t.update(p, b, iv, v, now)
}

// switchBoot makes b's boot the peer's current one and the current one the
// alternative, and starts the new boot's history afresh.
func switchBoot(p *peer, b *wire.RawBeat) {
	p.altBoot, p.altSeq, p.altHeard = p.boot, p.seq, p.lastBeat
	p.boot, p.seq, p.host = string(b.Boot), 0, string(b.Host)
	p.lastBeat, p.samples, p.probeSent, p.conflict, p.gone = 0, 0, 0, false, false
}

// update copies a beat into p, reusing strings whose bytes are unchanged.
func (t *table) update(p *peer, b *wire.RawBeat, iv time.Duration, v int64, now time.Time) {
	if p.lastBeat != 0 && p.seq != 0 && b.Seq > p.seq {
		// Normalise the gap by the beats it spans, so lost beats do not
		// inflate the estimate; PhiPause is what tolerates loss.
		x := float64(v-p.lastBeat) / float64(b.Seq-p.seq)
		if p.samples == 0 {
			p.mean, p.variance = x, 0
		} else {
			const alpha = 1.0 / 16
			d := x - p.mean
			p.mean += alpha * d
			p.variance = (1 - alpha) * (p.variance + alpha*d*d)
		}
		if p.samples < math.MaxUint32 {
			p.samples++
		}
	}
	p.seq = b.Seq
	p.cycles = 0
	p.interval = iv
	p.lastBeat, p.lastHeard = v, v
	p.pid = int32(b.PID)
	p.plain = b.Plain // p's strings are b's, byte for byte
	if !b.TS.IsZero() {
		// Against the wall clock now, not wall(v): that is the monotonic
		// clock's idea of the wall time, which drifts from the real one
		// after a clock step, and sender timestamps are wall clock.
		p.lastTS = b.TS.UnixNano()
		p.skew = p.lastTS - now.UnixNano()
	}
	if string(b.Version) != p.version {
		p.version = string(b.Version)
	}
	if string(b.Labels) != p.labels {
		p.labels = string(b.Labels)
	}
	slot := v / int64(iv)
	if shift := slot - p.histSlot; shift > 0 {
		if shift >= 64 {
			p.history = 0
		} else {
			p.history <<= uint(shift)
		}
		p.histSlot = slot
	}
	p.history |= 1
}

func (t *table) afterBeat(p *peer, b *wire.RawBeat, v int64, now time.Time) {
	switch {
	case b.Leaving:
		if p.state != StateLeft {
			t.transition(p, StateLeft, ReasonGoodbye, v, now)
		}
	case p.state != StateAlive:
		t.transition(p, StateAlive, ReasonBeat, v, now)
		p.probeSent = 0
	}
	t.reschedule(p, v)
}

// reschedule sets p's next evaluation after a change of state or evidence.
func (t *table) reschedule(p *peer, v int64) {
	switch p.state {
	case StateLeft, StateDead:
		t.schedule(p, p.since+int64(t.cfg.Retention))
	default:
		s, _ := t.timeouts(p)
		t.schedule(p, t.base(p)+s)
	}
}

// probeAnswered applies a probe reply from peer id.
func (t *table) probeAnswered(id string, boot []byte, now time.Time) string {
	t.clockIn(now)
	p, ok := t.peers.peek(id)
	if !ok || string(boot) != p.boot {
		return rejProbeMismatch
	}
	if p.probeSent == 0 {
		return rejProbeUnsolicited
	}
	v := t.vnow(now)
	p.rtt = time.Duration(v - p.probeSent)
	t.st.rtt.observe(p.rtt.Seconds())
	p.probeSent = 0
	p.lastHeard = v
	t.st.probesAnswered++
	if p.state == StateSuspect {
		t.transition(p, StateAlive, ReasonProbeAnswered, v, now)
		if p.cycles < math.MaxUint8 {
			p.cycles++
		}
		t.reschedule(p, v)
	}
	return ""
}

// probeFailed records that nobody answered the probe to id.
func (t *table) probeFailed(id string) {
	if p, ok := t.peers.peek(id); ok && p.probeSent != 0 {
		p.probeSent = 0
		t.st.probesFailed++
	}
}

// sweep evaluates every peer that is due at now. While observation is
// impaired it does nothing: no verdict can be trusted then.
func (t *table) sweep(now time.Time) {
	t.clockIn(now)
	if t.impaired {
		return
	}
	if t.backlogged {
		t.st.deferred++
		return
	}
	v := t.vnow(now)
	for len(t.heap) > 0 && t.heap[0].due <= v {
		t.evaluate(t.heap.popMin(), v, now)
	}
}

func (t *table) evaluate(p *peer, v int64, now time.Time) {
	if p.checking && t.stepCheck(p, v, now) {
		return
	}
	switch p.state {
	case StateAlive:
		s, d := t.timeouts(p)
		due := t.base(p) + s
		if v < due {
			t.schedule(p, due)
			return
		}
		t.transition(p, StateSuspect, ReasonSilent, v, now)
		p.probeSent = max(v, 1)
		t.st.probesSent++
		t.probes = append(t.probes, p.id)
		t.schedule(p, t.deadDue(p, s, d))
	case StateSuspect:
		s, d := t.timeouts(p)
		due := t.deadDue(p, s, d)
		if v < due {
			t.schedule(p, due)
			return
		}
		if p.probeSent != 0 {
			p.probeSent = 0
			t.st.probesFailed++
		}
		t.endCheck(p, checkFallback)
		e := t.transition(p, StateDead, ReasonTimeout, v, now)
		e.Overshoot = time.Duration(v - due)
		t.st.overshoot.observe(e.Overshoot.Seconds())
		t.schedule(p, v+int64(t.cfg.Retention))
	default: // dead or left: forget after the retention
		due := p.since + int64(t.cfg.Retention)
		if v < due {
			t.schedule(p, due)
			return
		}
		t.heap.remove(p)
		t.st.byState[p.state]--
		t.peers.remove(p.id)
		t.st.forgotten++
		t.forgot = append(t.forgot, forgotPeer{id: p.id, state: p.state, since: t.wall(p.since)})
	}
}

// stalled extends every deadline by d, the time the monitor itself could
// not run.
func (t *table) stalled(d time.Duration) {
	t.offset += d
	t.lastStall = d
	t.st.stalls++
	t.st.stalledFor += d
}

// setImpaired suspends or resumes verdicts. On resuming, every peer gets a
// full timeout of grace from now, since beats may have been missed.
func (t *table) setImpaired(impaired bool, now time.Time) {
	t.clockIn(now)
	if t.impaired == impaired {
		return
	}
	t.impaired = impaired
	if impaired {
		t.st.outages++
		return
	}
	t.graceFrom = t.vnow(now)
	t.seeingFrom = t.graceFrom
	// Entries due during the outage are evaluated on the next sweep and
	// pushed out by the grace; nothing else to do.
}

// info snapshots p, its labels still raw: the caller lets go of the lock,
// then calls parseLabels.
func (t *table) info(p *peer, v int64) PeerInfo {
	in := PeerInfo{
		ID: p.id, Host: p.host, State: p.state, Since: t.wall(p.since), Reason: reasons[p.reason],
		LastBeat: t.wall(p.lastBeat), LastSeen: t.wall(p.lastHeard),
		Seq: p.seq, Boot: p.boot, PID: int(p.pid), Interval: p.interval,
		ProbeRTT: p.rtt, Version: p.version, Conflict: p.conflict,
		ClockSkew: time.Duration(p.skew), rawLabels: p.labels,
	}
	if p.interval > 0 {
		if shift := v/int64(p.interval) - p.histSlot; shift >= 0 && shift < 64 {
			in.History = p.history << uint(shift)
		}
	}
	return in
}

// peersBoot returns the current boot of id, for tests and diagnostics.
func (t *table) peersBoot(id string) string {
	if p, ok := t.peers.peek(id); ok {
		return p.boot
	}
	return ""
}
