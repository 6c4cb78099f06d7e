package monitor

import (
	"math"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// The crash fast path, the table's half: a DISCONNECT advisory for a live
// peer starts a check; the check waits out the peer's reconnect window
// plus DisconnectMargin (and, for a reset the node may not have seen,
// its beat interval first), then asks for one probe; NATS' "no responders"
// convicts, with reason disconnected, if nothing was heard from the peer
// since the advisory and the monitor's own view held throughout. Anything
// else ends the check and leaves the peer to the timeout path, which runs
// unchanged beside it. docs/RELIABILITY.md says why this cannot convict a
// live node, and what it assumes.
//
// Checks are rare, so their state lives in a map beside the peers rather
// than in every peer; the peer's one heap entry carries the check's
// deadline too (schedule keeps the earliest), so there is no timer per
// check.

// fastPathReasons are the disconnect reasons, in nats-server's words,
// after which a live node learns soon that its connection is gone and
// reconnects within its window: its process ended (the kernel closed or
// reset the socket), or the server kicked a working connection, which the
// node may take again at once. The slow-consumer reasons and "Stale
// Connection" are missing on purpose: they are the server's verdict on a
// client that stopped reading or answering, which is what a frozen,
// starved or partitioned node looks like, and such a node may well take
// longer than its window to come back. "Server Shutdown" is missing too:
// the server is going away, not the node, which returns when another
// server takes it, however long that takes, not within its window (a
// node that knows no other server waits for this one to restart).
// nats-server 2.15 stops its advisories before it closes its clients,
// but other versions need not. All of these, and any reason a later
// server may add, keep the timeout path.
//
// The value is true for the reasons that a reset reaching the server
// alone can give (a middlebox dropping the connection): the live node
// then learns of it only when it next writes, at its next beat, so its
// check waits one more of the peer's intervals before the window.
var fastPathReasons = map[string]bool{
	"Client Closed": false,
	"Read Error":    true,
	"Write Error":   true,
	"Kicked":        false,
}

type checkStage uint8

const (
	stageWait    checkStage = iota // waiting out the reconnect window
	stageProbe                     // the probe is out
	stageConfirm                   // no responders: waiting for beats already received to be counted
)

// check is one peer's fast-path check.
type check struct {
	from   int64  // virtual time the (latest) advisory arrived
	due    int64  // when the check next needs looking at
	boot   string // the peer's boot when the advisory arrived
	stalls uint64 // the monitor's stall count then
	conns  uint64 // how often the monitor's connection had reconnected then
	taken  int64  // stageConfirm: beats delivered to the monitor before the no-responders reply
	stage  checkStage
}

// advisory applies a DISCONNECT advisory for the node nc announced, which
// ended for reason, and returns what became of it (one of
// advisoryResults). conns is how often the monitor's connection has
// reconnected so far (nats.Conn.Stats().Reconnects).
func (t *table) advisory(nc wire.NodeConn, reason string, conns uint64, now time.Time) string {
	t.clockIn(now)
	v := t.vnow(now)
	if nc.Prefix != t.cfg.Prefix {
		return advOtherPrefix
	}
	p, ok := t.peers.peek(nc.ID)
	untilBeat, known := fastPathReasons[reason]
	switch {
	case !ok:
		return advUnknownPeer
	case p.state != StateAlive && p.state != StateSuspect:
		return advNotAlive
	case !known:
		return advReason
	case !t.settled(v) || t.backlogged:
		return advUnsettled
	}
	due := v + int64(nc.Reconnect+t.cfg.DisconnectMargin)
	if untilBeat {
		due += int64(p.interval)
	}
	c := t.checks[p]
	if c == nil {
		c = new(check)
		t.checks[p] = c
		p.checking = true
	} else {
		// Another advisory (or one claiming to be): the check starts
		// again from it, and is never brought forward.
		due = max(due, c.due)
	}
	*c = check{from: v, due: due, boot: p.boot, stalls: t.st.stalls, conns: conns, stage: stageWait}
	t.schedule(p, due)
	return advChecked
}

// settled reports whether the monitor has observed without a break for
// FastPathSettle at v, so that "no responders" from its server can be
// believed.
func (t *table) settled(v int64) bool {
	return !t.impaired && v-t.seeingFrom >= int64(t.cfg.FastPathSettle)
}

// stepCheck advances p's check at v, if it is due. It reports whether it
// convicted p.
func (t *table) stepCheck(p *peer, v int64, now time.Time) bool {
	c := t.checks[p]
	if v < c.due {
		t.schedule(p, c.due)
		return false
	}
	switch c.stage {
	case stageWait:
		if o := t.evidence(p, c); o != "" {
			t.endCheck(p, o)
			return false
		}
		c.stage, c.due = stageProbe, v+int64(t.cfg.ConfirmTimeout)
		t.confirms = append(t.confirms, p.id)
		t.schedule(p, c.due)
	case stageProbe:
		// Neither an answer nor "no responders": the probe or its reply
		// was lost, or went to a server that still believed in the old
		// subscription. That proves nothing.
		t.endCheck(p, checkFallback)
	case stageConfirm:
		return t.convict(p, c, v, now)
	}
	return false
}

// evidence returns how p's check must end now, or "" if the crash is
// still the only explanation: nothing heard from p since the advisory, no
// new boot, p still alive or suspect, and the monitor's own view whole
// throughout (connected, not stalled, no beats dropped or queued beyond
// MaxBacklog).
func (t *table) evidence(p *peer, c *check) string {
	switch {
	case p.lastHeard >= c.from || p.boot != c.boot:
		return checkAlive
	case p.state != StateAlive && p.state != StateSuspect:
		return checkFallback
	case t.impaired || t.backlogged || t.graceFrom > c.from || t.st.stalls != c.stalls:
		return checkFallback
	}
	return ""
}

// convict makes the verdict of a check whose probe found no responders,
// once every beat that reached the monitor before that reply has been
// judged: a beat the node sent on reconnecting may be in the queue.
func (t *table) convict(p *peer, c *check, v int64, now time.Time) bool {
	if t.taken < c.taken {
		t.schedule(p, v+1) // the next sweep
		return false
	}
	if o := t.evidence(p, c); o != "" {
		t.endCheck(p, o)
		return false
	}
	t.endCheck(p, checkDead)
	if p.probeSent != 0 {
		p.probeSent = 0
		t.st.probesFailed++
	}
	t.transition(p, StateDead, ReasonDisconnected, v, now)
	t.schedule(p, v+int64(t.cfg.Retention))
	return true
}

// endCheck ends p's check with outcome (one of checkOutcomes).
func (t *table) endCheck(p *peer, outcome string) {
	if !p.checking {
		return
	}
	delete(t.checks, p)
	p.checking = false
	if i := indexOf(checkOutcomes[:], outcome); i >= 0 {
		t.st.checks[i]++
	}
}

// confirmFailed records that the check probe of id could not be sent.
func (t *table) confirmFailed(id string) {
	if p, ok := t.peers.peek(id); ok && p.checking && t.checks[p].stage == stageProbe {
		t.endCheck(p, checkFallback)
	}
}

// confirmNoResponders applies NATS' "no responders" to the check probe of
// id; delivered is how many beats had reached the monitor by then, and
// conns how often its connection had reconnected (as for advisory).
func (t *table) confirmNoResponders(id string, delivered int64, conns uint64, now time.Time) {
	t.clockIn(now)
	p, ok := t.peers.peek(id)
	if !ok || !p.checking {
		return
	}
	c := t.checks[p]
	if c.stage != stageProbe {
		return // a reply to a probe of an earlier round
	}
	if conns != c.conns {
		// The reply came over a connection nats.go re-established since
		// the advisory, perhaps to a server that has just started and
		// does not know the cluster's subscriptions yet. The Run loop,
		// which suspends verdicts on a reconnection, takes status
		// changes on its own goroutine and may not have seen this one.
		t.endCheck(p, checkFallback)
		return
	}
	v := t.vnow(now)
	c.stage, c.taken, c.due = stageConfirm, delivered, v
	t.convict(p, c, v, now)
}

// confirmAnswered applies an answer from boot to the check probe of id.
// Any answer ends the check: some process holds the id. One from the
// peer's own boot is heard from it, as a suspect probe's answer is.
func (t *table) confirmAnswered(id string, boot []byte, now time.Time) {
	t.clockIn(now)
	p, ok := t.peers.peek(id)
	if !ok || !p.checking || t.checks[p].stage != stageProbe {
		return
	}
	t.endCheck(p, checkAlive)
	if string(boot) != p.boot {
		return
	}
	v := t.vnow(now)
	p.lastHeard = v
	if p.state == StateSuspect {
		p.probeSent = 0
		t.transition(p, StateAlive, ReasonProbeAnswered, v, now)
		if p.cycles < math.MaxUint8 {
			p.cycles++
		}
		t.reschedule(p, v)
	}
}
