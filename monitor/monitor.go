package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/redact"
	"github.com/hbmesh/hbmesh/wire"
)

// ErrClosed is returned by Run when the NATS connection is closed, before
// Run or under it. It wraps [nats.ErrConnectionClosed], so errors.Is
// matches either.
var ErrClosed = fmt.Errorf("monitor: %w", nats.ErrConnectionClosed)

// ErrRunTwice is returned by a second call of [Monitor.Run] on one
// Monitor, whether or not the first has returned.
var ErrRunTwice = errors.New("monitor: Run called more than once")

// Monitor watches the beats of every node under one prefix and turns
// silence into verdicts. Create it with [New] and start it with
// [Monitor.Run]; its query methods are safe for concurrent use.
type Monitor struct {
	nc   *nats.Conn
	cfg  Config
	subj wire.Subjects

	// mu guards tab and the observation flags below. It is held only for
	// in-memory work, never across I/O or the OnEvent callback.
	mu         sync.Mutex
	tab        *table
	running    bool
	stopped    bool
	subscribed bool
	connected  bool
	checkErr   error // last self-check failure, nil when healthy
	logged     [32]time.Time
	suppressed [32]uint64

	inbox string
	wake  chan struct{}
	runs  atomic.Bool

	// beatDec, beatRaw and beatPrev belong to the goroutine draining the beat
	// channel, probeDec and probeRaw to the probe-reply subscription's
	// callback; each has one user, so they need no lock of their own.
	beatDec  wire.Decoder
	beatRaw  wire.RawBeat
	beatPrev wire.Sender
	probeDec wire.Decoder
	probeRaw wire.RawBeat

	// The crash fast path (advisory.go): the inbox of the check probes'
	// replies and their callback's decoder, the beat subscription (whose
	// delivered count a verdict waits for), and, guarded by mu like
	// advLogged, the advisory subscription CheckFastPath makes and the
	// name of its test connection.
	confirmInbox string
	confirmDec   wire.Decoder
	confirmRaw   wire.RawBeat
	beatSub      *nats.Subscription
	advSub       *nats.Subscription
	checkName    string
	checkSeen    chan struct{}
	advLogged    time.Time
}

// New checks cfg and returns a Monitor that will use nc. It does no I/O.
func New(nc *nats.Conn, cfg Config) (*Monitor, error) {
	if nc == nil {
		return nil, invalid.Field("nc", nil, "is a nil *nats.Conn")
	}
	cfg.fillDefaults()
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = wire.IDFromHostname(fmt.Sprintf("%s-%d", host, os.Getpid()))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	subj, _ := wire.NewSubjects(cfg.Prefix)
	m := &Monitor{nc: nc, cfg: cfg, subj: subj, wake: make(chan struct{}, 1)}
	m.tab = newTable(&m.cfg, cfg.Clock.Now())
	m.tab.st.rtt = newHistogram(ProbeRTTBuckets())
	m.tab.st.overshoot = newHistogram(OvershootBuckets())
	return m, nil
}

// ID returns the monitor's id.
func (m *Monitor) ID() string { return m.cfg.ID }

// Subjects returns the subject set the monitor uses.
func (m *Monitor) Subjects() wire.Subjects { return m.subj }

// Run subscribes, judges peers until ctx is done, and then unsubscribes,
// delivers the events still queued, and returns once every goroutine it
// started has exited. It returns nil on cancellation, [ErrClosed] if the
// connection closes, or the error that prevented it from subscribing.
// Run may be called once; a second call returns [ErrRunTwice].
func (m *Monitor) Run(ctx context.Context) error {
	if !m.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	if m.nc.IsClosed() {
		return ErrClosed
	}
	log := m.cfg.Logger
	clk := m.cfg.Clock

	statusCh := m.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer m.nc.RemoveStatusListener(statusCh)

	m.inbox = m.nc.NewInbox()
	// Beats reach a channel that one goroutine of ours drains in batches:
	// a batch costs one lock and one clock read, and a channel hands a busy
	// consumer its messages more cheaply than nats.go's per-message
	// callback (docs/PERFORMANCE.md, ingest).
	beatCh := make(chan *nats.Msg, m.cfg.BeatQueue)
	beatSub, err := m.nc.ChanSubscribe(m.subj.Beats(), beatCh)
	if err != nil {
		return fmt.Errorf("monitor: subscribe %q: %w", m.subj.Beats(), err)
	}
	defer beatSub.Unsubscribe()
	m.beatSub = beatSub
	probeSub, err := m.nc.Subscribe(wire.ProbeReplies(m.inbox), m.onProbeReply)
	if err != nil {
		return fmt.Errorf("monitor: subscribe %q: %w", wire.ProbeReplies(m.inbox), err)
	}
	defer probeSub.Unsubscribe()
	stopConfirms, err := m.subscribeConfirms()
	if err != nil {
		return err
	}
	defer stopConfirms()
	// A round trip makes sure the server has both subscriptions before
	// Ready says so: a beat published after Ready returns nil is seen. If
	// it fails, Ready reports the failure until a self check passes.
	var flushErr error
	if m.nc.IsConnected() {
		flushErr = m.nc.FlushTimeout(m.cfg.SelfCheckTimeout)
	}

	now := clk.Now()
	m.mu.Lock()
	m.running, m.subscribed, m.connected = true, true, m.nc.IsConnected()
	m.checkErr = flushErr
	skipped := m.tab.restore(m.cfg.Restore, now)
	m.tab.setImpaired(!m.connected || flushErr != nil, now)
	m.tab.seeingFrom = m.tab.vnow(now)
	m.mu.Unlock()
	if flushErr != nil {
		log.Warn("self check failed; suspending verdicts", "err", flushErr)
	}
	if skipped > 0 {
		log.Warn("restart memory entries skipped: invalid id, interval or state", "skipped", skipped, "of", len(m.cfg.Restore))
	}
	advisories := m.cfg.Advisories
	if m.cfg.NoFastPath {
		advisories = "off"
	}
	log.Info("monitor started", "monitor", m.cfg.ID, "subject", m.subj.Beats(), "detector", string(m.cfg.Detector), "restored", len(m.cfg.Restore)-skipped, "advisories", advisories)

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	dispatchDone := make(chan struct{})
	wg.Go(func() { m.dispatch(dispatchDone) })
	wg.Go(func() { m.consumeBeats(beatCh, dispatchDone) })
	wg.Go(func() { m.selfCheck(runCtx) })
	defer func() {
		cancel()
		beatSub.Unsubscribe()
		probeSub.Unsubscribe()
		stopConfirms()
		m.mu.Lock()
		m.stopped, m.running, m.subscribed = true, false, false
		adv := m.advSub
		m.advSub = nil
		m.mu.Unlock()
		if adv != nil {
			adv.Unsubscribe()
		}
		close(dispatchDone)
		wg.Wait()
		log.Info("monitor stopped", "monitor", m.cfg.ID)
	}()

	ticker := clk.NewTicker(m.cfg.Resolution)
	defer ticker.Stop()
	var lastStalls uint64
	var lastDropped int
	var lastEvicted uint64
	var lastEvictLog time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case st := <-statusCh:
			if st == nats.CLOSED {
				return ErrClosed
			}
			m.setConnected(st == nats.CONNECTED)
		case <-ticker.C():
			now := clk.Now()
			dropped, _ := beatSub.Dropped()
			queued := len(beatCh)
			m.mu.Lock()
			if backlogged := queued > m.cfg.MaxBacklog; backlogged != m.tab.backlogged {
				m.tab.backlogged = backlogged
				if backlogged {
					log.Warn("beats are queueing faster than the monitor handles them; holding verdicts until it catches up", "queued", queued)
				} else {
					log.Info("beat backlog worked off; verdicts resume", "queued", queued)
				}
			}
			m.tab.clockIn(now)
			if m.tab.st.stalls > lastStalls {
				lastStalls = m.tab.st.stalls
				log.Warn("monitor stalled; extending every deadline by the stall", "stall", m.tab.lastStall)
			}
			if dropped > lastDropped {
				// Beats were lost on our side: silence proves nothing now.
				m.tab.graceFrom = m.tab.vnow(now)
				m.tab.st.dropped = uint64(dropped)
				log.Warn("slow consumer: beats dropped by the monitor; granting every peer a fresh timeout", "dropped", dropped-lastDropped)
				lastDropped = dropped
			}
			m.tab.sweep(now)
			if ev := m.tab.st.evicted; ev > lastEvicted && now.Sub(lastEvictLog) >= 10*time.Second {
				log.Warn("peer table full: peers forgotten to make room (raise --max-peers, Config.MaxPeers)", "evicted", ev-lastEvicted, "max_peers", m.cfg.MaxPeers)
				lastEvicted, lastEvictLog = ev, now
			}
			probes, forgot, confirms := m.tab.probes, m.tab.forgot, m.tab.confirms
			m.tab.probes, m.tab.forgot, m.tab.confirms = nil, nil, nil
			pending := len(m.tab.events) > 0
			m.mu.Unlock()
			m.logForgotten(forgot)
			for _, id := range probes {
				if err := m.nc.PublishRequest(m.subj.Probe(id), wire.ProbeReply(m.inbox, id), nil); err != nil {
					log.Warn("probe not sent", "peer", id, "err", err)
					m.mu.Lock()
					m.tab.probeFailed(id)
					m.mu.Unlock()
				}
			}
			m.sendConfirms(confirms)
			if pending {
				m.signal()
			}
		}
	}
}

// logForgotten logs the dead and left peers the sweep just forgot: a dead
// one stops counting as dead, so an alert on it resolves. A mass
// forgetting is logged as a count after the first few.
func (m *Monitor) logForgotten(forgot []forgotPeer) {
	const each = 5
	for i, f := range forgot {
		if i == each {
			m.cfg.Logger.Info("more peers forgotten after the retention", "count", len(forgot)-each, "retention", m.cfg.Retention)
			break
		}
		lvl := slog.LevelInfo
		if f.state == StateDead {
			lvl = slog.LevelWarn
		}
		m.cfg.Logger.Log(context.Background(), lvl, "peer forgotten after the retention", "peer", f.id, "state", f.state, "since", f.since, "retention", m.cfg.Retention)
	}
}

func (m *Monitor) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// dispatch delivers events to OnEvent from one goroutine, in order.
func (m *Monitor) dispatch(done <-chan struct{}) {
	var spare []Event
	deliver := func() {
		m.mu.Lock()
		evs := m.tab.events
		m.tab.events = spare[:0]
		m.mu.Unlock()
		if m.cfg.OnEvent != nil {
			for i := range evs {
				m.cfg.OnEvent(evs[i])
			}
		}
		clear(evs)
		spare = evs
	}
	for {
		select {
		case <-m.wake:
			deliver()
		case <-done:
			deliver()
			return
		}
	}
}

// selfCheck proves the connection round-trips every SelfCheckInterval. A
// half-open TCP connection or a wedged server otherwise looks exactly like
// a silent fleet.
func (m *Monitor) selfCheck(ctx context.Context) {
	t := m.cfg.Clock.NewTicker(m.cfg.SelfCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if !m.nc.IsConnected() {
			continue // the status listener already suspended verdicts
		}
		err := m.nc.FlushTimeout(m.cfg.SelfCheckTimeout)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		was := m.checkErr
		m.checkErr = err
		m.updateImpaired()
		m.mu.Unlock()
		switch {
		case err != nil && was == nil:
			m.cfg.Logger.Warn("self check failed; suspending verdicts", "err", err)
		case err == nil && was != nil:
			m.cfg.Logger.Info("self check passed again; resuming verdicts with a fresh timeout for every peer")
		}
	}
}

func (m *Monitor) setConnected(up bool) {
	m.mu.Lock()
	m.connected = up
	if up {
		m.checkErr = nil
	}
	m.updateImpaired()
	m.mu.Unlock()
	if up {
		m.cfg.Logger.Info("NATS connection up; resuming verdicts with a fresh timeout for every peer", "server", redact.URL(m.nc.ConnectedUrl()))
	} else {
		m.cfg.Logger.Warn("NATS connection lost; suspending verdicts")
	}
}

// updateImpaired must be called with mu held.
func (m *Monitor) updateImpaired() {
	m.tab.setImpaired(!m.connected || m.checkErr != nil, m.cfg.Clock.Now())
}

// beatBatch is the most beats handled under one lock. A batch holds the
// lock for tens of microseconds at most, so readers of the table never
// wait long behind a burst.
const beatBatch = 64

// consumeBeats drains the beat subscription until done is closed, taking
// whatever has queued, up to beatBatch beats, at a time.
func (m *Monitor) consumeBeats(ch <-chan *nats.Msg, done <-chan struct{}) {
	var batch [beatBatch]*nats.Msg
	for {
		select {
		case msg := <-ch:
			batch[0] = msg
		case <-done:
			return
		}
		n := 1
	fill:
		for n < len(batch) {
			select {
			case msg := <-ch:
				batch[n] = msg
				n++
			default:
				break fill
			}
		}
		m.onBeats(batch[:n])
		clear(batch[:n])
	}
}

// onBeats judges a batch of beat messages. They arrived together, so one
// clock reading stands for all of them.
func (m *Monitor) onBeats(msgs []*nats.Msg) {
	now := m.cfg.Clock.Now()
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	for _, msg := range msgs {
		m.beatLocked(msg, now)
	}
	m.tab.taken += int64(len(msgs))
	pending := len(m.tab.events) > 0
	m.mu.Unlock()
	if pending {
		m.signal()
	}
}

// beatLocked validates one beat message and applies it to the table.
func (m *Monitor) beatLocked(msg *nats.Msg, now time.Time) {
	// The subject's token is only compared with the payload's id, which the
	// decoder validates, so it is validated once, there.
	id, ok := m.subj.BeatID(msg.Subject)
	if !ok {
		m.rejectLocked(rejSubject, "", fmt.Errorf("subject %q is not a beat subject", msg.Subject))
		return
	}
	// A known peer's beat usually repeats all but its seq, ts and status,
	// which DecodeNext checks byte for byte instead of parsing. (Looking
	// the peer up before the beat is judged marks it recently heard even
	// if the beat is then refused; it came on the peer's own subject.)
	p, known := m.tab.peers.get(id)
	var err error
	if known && p.sender(&m.beatPrev) {
		err = m.beatDec.DecodeNext(msg.Data, &m.beatRaw, &m.beatPrev)
	} else {
		err = m.beatDec.Decode(msg.Data, &m.beatRaw)
	}
	if err != nil {
		if _, perr := m.subj.ParseBeat(msg.Subject); perr != nil {
			m.rejectLocked(rejSubject, "", perr) // a hostile subject, whatever the payload
			return
		}
		m.rejectLocked(decodeReason(err), id, err)
		return
	}
	if string(m.beatRaw.ID) != id {
		reason := rejIDMismatch
		if _, perr := m.subj.ParseBeat(msg.Subject); perr != nil {
			reason = rejSubject
		}
		m.rejectLocked(reason, id, fmt.Errorf("payload id %q on subject %q", m.beatRaw.ID, msg.Subject))
		return
	}
	if r := m.tab.observePeer(id, p, known, &m.beatRaw, now); r != "" {
		m.rejectLocked(r, id, nil)
	}
}

func (m *Monitor) onProbeReply(msg *nats.Msg) {
	now := m.cfg.Clock.Now()
	id := strings.TrimPrefix(msg.Subject, m.inbox+".")
	if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
		m.mu.Lock()
		m.tab.probeFailed(id)
		m.mu.Unlock()
		return
	}
	if err := m.probeDec.Decode(msg.Data, &m.probeRaw); err != nil {
		m.reject(rejProbeMalformed, id, err)
		return
	}
	if string(m.probeRaw.ID) != id {
		m.reject(rejProbeMismatch, id, fmt.Errorf("reply id %q to a probe of %q", m.probeRaw.ID, id))
		return
	}
	m.mu.Lock()
	if !m.stopped {
		if r := m.tab.probeAnswered(id, m.probeRaw.Boot, now); r != "" {
			m.rejectLocked(r, id, nil)
		}
	}
	pending := len(m.tab.events) > 0
	m.mu.Unlock()
	if pending {
		m.signal()
	}
}

func decodeReason(err error) string {
	var de *wire.DecodeError
	if errors.As(err, &de) {
		return string(de.Reason)
	}
	return string(wire.ReasonMalformed)
}

func (m *Monitor) reject(reason, id string, err error) {
	m.mu.Lock()
	m.rejectLocked(reason, id, err)
	m.mu.Unlock()
}

// rejectLocked counts a rejection and logs it, at most once per reason
// every 10 seconds so a hostile flood cannot flood the logs too.
func (m *Monitor) rejectLocked(reason, id string, err error) {
	m.tab.st.reject(reason)
	i := reasonIndex[reason]
	now := m.cfg.Clock.Now()
	if now.Sub(m.logged[i]) < 10*time.Second {
		m.suppressed[i]++
		return
	}
	m.logged[i] = now
	n := m.suppressed[i]
	m.suppressed[i] = 0
	switch {
	case reason == rejProbeUnsolicited:
		// Usually a late answer: a peer frozen while suspect answers the
		// queued probe when it thaws, after its verdict or its next beat
		// closed the probe. Counted like any rejection, but not a warning.
		m.cfg.Logger.Info("probe reply to no open probe ignored", "reason", reason, "peer", id, "suppressed", n)
	case strings.HasPrefix(reason, "probe_"):
		m.cfg.Logger.Warn("probe reply rejected", "reason", reason, "peer", id, "err", err, "suppressed", n)
	default:
		m.cfg.Logger.Warn("beat rejected", "reason", reason, "peer", id, "err", err, "suppressed", n)
	}
}

// Ready returns nil when the monitor is subscribed and its connection is
// proven live, so its verdicts can be trusted; otherwise it says why not.
func (m *Monitor) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.running:
		return errors.New("monitor: not running")
	case !m.subscribed:
		return errors.New("monitor: not subscribed")
	case !m.connected:
		return errors.New("monitor: NATS connection down")
	case m.checkErr != nil:
		return fmt.Errorf("monitor: self check failing: %w", m.checkErr)
	}
	return nil
}

// WaitReady blocks until Ready returns nil, and returns nil then; or until
// ctx is done, and returns ctx's error with the last reason Ready gave.
// Nothing signals readiness, so it polls, every 10ms of real time.
func (m *Monitor) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		err := m.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Stats returns a snapshot of the counters.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &m.tab.st
	s := Stats{
		Beats: c.beats, ProbesSent: c.probesSent, ProbesAnswered: c.probesAnswered,
		ProbesFailed: c.probesFailed, Evicted: c.evicted, Forgotten: c.forgotten,
		Restarts: c.restarts, Conflicts: c.conflicts, Stalls: c.stalls, StalledFor: c.stalledFor,
		Outages: c.outages, BacklogDeferrals: c.deferred, Dropped: c.dropped, Connected: m.connected, Impaired: m.tab.impaired,
		Rejected:    make(map[string]uint64, len(rejectReasons)),
		Transitions: make(map[State]uint64, 4),
		Peers:       make(map[State]int, 4),
		ProbeRTT:    c.rtt.snapshot(),
		Overshoot:   c.overshoot.snapshot(),
		FastPath:    c.fastPath && !m.cfg.NoFastPath && m.tab.settled(m.tab.vnow(m.cfg.Clock.Now())),
		Advisories:  make(map[string]uint64, len(advisoryResults)),
		Checks:      make(map[string]uint64, len(checkOutcomes)),
	}
	for i, r := range advisoryResults {
		s.Advisories[r] = c.advisories[i]
	}
	for i, o := range checkOutcomes {
		s.Checks[o] = c.checks[i]
	}
	for i, r := range rejectReasons {
		s.Rejected[r] = c.rejected[i]
	}
	for _, st := range States() {
		s.Transitions[st] = c.transitions[st]
		s.Peers[st] = c.byState[st]
	}
	return s
}
