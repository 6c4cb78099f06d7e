package monitor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/wire"
)

// The crash fast path, the monitor's half: the subscriptions to the
// DISCONNECT advisories and to the replies of the check probes, their
// callbacks, and the check that advisories arrive at all. The decisions
// are the table's (fastpath.go).

// ErrFastPathOff is wrapped by the error [Monitor.CheckFastPath] returns
// when the crash fast path cannot work.
var ErrFastPathOff = errors.New("crash fast path off")

// subscribeFastPath subscribes to the advisories and to the replies of
// the check probes. It returns a function that unsubscribes both.
func (m *Monitor) subscribeFastPath() (func(), error) {
	if m.cfg.NoFastPath {
		return func() {}, nil
	}
	m.confirmInbox = m.nc.NewInbox()
	replies, err := m.nc.Subscribe(wire.ProbeReplies(m.confirmInbox), m.onConfirmReply)
	if err != nil {
		return nil, fmt.Errorf("monitor: subscribe %q: %w", wire.ProbeReplies(m.confirmInbox), err)
	}
	adv, err := m.nc.Subscribe(m.cfg.Advisories, m.onAdvisory)
	if err != nil {
		replies.Unsubscribe()
		return nil, fmt.Errorf("monitor: subscribe %q: %w", m.cfg.Advisories, err)
	}
	return func() {
		adv.Unsubscribe()
		replies.Unsubscribe()
	}, nil
}

// sendConfirms sends the check probes the last sweep asked for.
func (m *Monitor) sendConfirms(ids []string) {
	for _, id := range ids {
		if err := m.nc.PublishRequest(m.subj.Probe(id), wire.ProbeReply(m.confirmInbox, id), nil); err != nil {
			m.cfg.Logger.Warn("fast-path probe not sent; the timeout path decides", "peer", id, "err", err)
			m.mu.Lock()
			m.tab.confirmFailed(id)
			m.mu.Unlock()
		}
	}
}

// onAdvisory handles one DISCONNECT advisory, on nats.go's goroutine for
// the subscription.
func (m *Monitor) onAdvisory(msg *nats.Msg) {
	now := m.cfg.Clock.Now()
	a, err := wire.DecodeDisconnectAdvisory(msg.Data)
	var (
		nc     wire.NodeConn
		result string
	)
	if err == nil {
		nc, err = wire.ParseNodeConn(a.Client.Name)
		if err == wire.ErrNotNodeConn {
			result, err = advNotNode, nil
		}
	}
	if err != nil {
		result = advMalformed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.Type != "" {
		m.tab.st.fastPath = true // an advisory arrived: the path works
	}
	if result == advNotNode && m.checkName != "" && a.Client.Name == m.checkName {
		result = advSelfCheck
		close(m.checkSeen)
		m.checkName = ""
	}
	if result == "" && !m.stopped {
		result = m.tab.advisory(nc, a.Reason, now)
	}
	if i := indexOf(advisoryResults[:], result); i >= 0 {
		m.tab.st.advisories[i]++
	}
	if result == advMalformed && now.Sub(m.advLogged) >= 10*time.Second {
		m.advLogged = now
		m.cfg.Logger.Warn("disconnect advisory ignored", "subject", msg.Subject, "err", err)
	}
	if len(m.tab.events) > 0 {
		m.signal()
	}
}

// onConfirmReply handles a reply to a check probe: an answer, or the
// server's "no responders".
func (m *Monitor) onConfirmReply(msg *nats.Msg) {
	now := m.cfg.Clock.Now()
	id := strings.TrimPrefix(msg.Subject, m.confirmInbox+".")
	if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
		// Every beat that reached the monitor before this reply is in
		// the beat queue or judged already; the verdict waits for it.
		delivered, _ := m.beatSub.Delivered()
		m.mu.Lock()
		if !m.stopped {
			m.tab.confirmNoResponders(id, delivered, now)
		}
		pending := len(m.tab.events) > 0
		m.mu.Unlock()
		if pending {
			m.signal()
		}
		return
	}
	if err := m.confirmDec.Decode(msg.Data, &m.confirmRaw); err != nil {
		m.reject(rejProbeMalformed, id, err)
		return
	}
	if string(m.confirmRaw.ID) != id {
		m.reject(rejProbeMismatch, id, fmt.Errorf("reply id %q to a probe of %q", m.confirmRaw.ID, id))
		return
	}
	m.mu.Lock()
	if !m.stopped {
		m.tab.confirmAnswered(id, m.confirmRaw.Boot, now)
	}
	pending := len(m.tab.events) > 0
	m.mu.Unlock()
	if pending {
		m.signal()
	}
}

// CheckFastPathEvery is how often [Monitor.CheckFastPath] opens a test
// connection while it waits.
const CheckFastPathEvery = 500 * time.Millisecond

// CheckFastPath finds out whether the crash fast path can work: whether
// the server's DISCONNECT advisories reach this monitor. It calls dial
// with a connection name of wire.MonitorCheckConnName, closes the
// connection dial returns at once, and waits for its advisory; while it
// waits it does so again every CheckFastPathEvery, in case the first
// advisory went out before the monitor's subscription had crossed the
// cluster. It returns nil once an advisory arrives, or when ctx is done
// an error wrapping [ErrFastPathOff] that says why, as far as the server
// tells (which account the monitor is in). Call it once, after Run has
// subscribed (WaitReady returns nil); dial should reach the monitor's own
// server with the monitor's credentials. The monitor takes any advisory
// that arrives, checked or not, so calling it is optional: it is how an
// operator learns that nothing will.
func (m *Monitor) CheckFastPath(ctx context.Context, dial func(name string) (*nats.Conn, error)) error {
	if m.cfg.NoFastPath {
		return fmt.Errorf("%w: turned off", ErrFastPathOff)
	}
	if err := m.Ready(); err != nil {
		return fmt.Errorf("%w: the monitor is not ready: %w", ErrFastPathOff, err)
	}
	name := wire.MonitorCheckConnName(m.cfg.ID, strings.ToLower(rand.Text()[:10]))
	seen := make(chan struct{})
	m.mu.Lock()
	m.checkName, m.checkSeen = name, seen
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.checkName = ""
		m.mu.Unlock()
	}()
	tick := time.NewTicker(CheckFastPathEvery)
	defer tick.Stop()
	for {
		c, err := dial(name)
		if err != nil {
			return fmt.Errorf("%w: open a test connection: %w", ErrFastPathOff, err)
		}
		c.Close()
		select {
		case <-seen:
			return m.awaitSettled(ctx)
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrFastPathOff, m.whyNoAdvisory())
		case <-tick.C:
		}
	}
}

// awaitSettled waits until Stats.FastPath holds, reading the monitor's
// clock every Resolution.
func (m *Monitor) awaitSettled(ctx context.Context) error {
	tick := m.cfg.Clock.NewTicker(m.cfg.Resolution)
	defer tick.Stop()
	for !m.Stats().FastPath {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: advisories arrive, but the monitor has not observed without a break for %v (it lost its connection, or stalled)", ErrFastPathOff, m.cfg.FastPathSettle)
		case <-tick.C():
		}
	}
	return nil
}

// whyNoAdvisory explains, as far as the server says, why no advisory
// arrives: it asks which account the monitor is in.
func (m *Monitor) whyNoAdvisory() string {
	const fix = "see docs/SECURITY.md, \"Crash fast path\""
	reply, err := m.nc.Request(wire.UserInfoSubject, nil, m.cfg.SelfCheckTimeout)
	if err != nil {
		return fmt.Sprintf("no DISCONNECT advisory reached %q, and the server did not say which account the monitor is in (%v); %s", m.cfg.Advisories, err, fix)
	}
	acc, err := wire.DecodeUserInfoAccount(reply.Data)
	switch {
	case err != nil:
		return fmt.Sprintf("no DISCONNECT advisory reached %q (%v); %s", m.cfg.Advisories, err, fix)
	case acc == "$G":
		return "the monitor is in nats-server's global account, which receives no advisories: " +
			"run the server with a mesh account (hbmesh server, monitor --embedded and demo do) or " + fix
	}
	return fmt.Sprintf("no DISCONNECT advisory reached %q: account %s does not import %s, or the monitor may not subscribe to it; %s",
		m.cfg.Advisories, acc, wire.DisconnectAdvisorySubject(acc), fix)
}
