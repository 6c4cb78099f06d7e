package monitor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
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

// subscribeConfirms subscribes to the replies of the check probes. It
// returns a function that unsubscribes. The advisories are subscribed to
// later, by CheckFastPath, once it knows the subscription is allowed.
func (m *Monitor) subscribeConfirms() (func(), error) {
	if m.cfg.NoFastPath {
		return func() {}, nil
	}
	m.confirmInbox = m.nc.NewInbox()
	replies, err := m.nc.Subscribe(wire.ProbeReplies(m.confirmInbox), m.onConfirmReply)
	if err != nil {
		return nil, fmt.Errorf("monitor: subscribe %q: %w", wire.ProbeReplies(m.confirmInbox), err)
	}
	return func() { replies.Unsubscribe() }, nil
}

// subscribeAdvisories subscribes to the advisories on the monitor's
// connection, once however often it is called, and makes sure the server
// has the subscription. Run unsubscribes when it returns.
func (m *Monitor) subscribeAdvisories() error {
	sub, err := m.nc.Subscribe(m.cfg.Advisories, m.onAdvisory)
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", m.cfg.Advisories, err)
	}
	m.mu.Lock()
	stopped, twice := m.stopped, m.advSub != nil
	if !stopped && !twice {
		m.advSub = sub
	}
	m.mu.Unlock()
	switch {
	case stopped:
		sub.Unsubscribe()
		return errors.New("the monitor has stopped")
	case twice:
		sub.Unsubscribe()
		return nil
	}
	if err := m.nc.FlushTimeout(m.cfg.SelfCheckTimeout); err != nil {
		return fmt.Errorf("subscribe %q: %w", m.cfg.Advisories, err)
	}
	return nil
}

// dropAdvisories undoes subscribeAdvisories when CheckFastPath fails, so
// that the monitor does what the error says: it takes no advisories, has
// no check open, and Stats.FastPath stays false. The unsubscribe comes
// first: onAdvisory ignores what arrives on a subscription no longer
// valid, so an advisory being handled meanwhile cannot turn it on again.
func (m *Monitor) dropAdvisories() {
	m.mu.Lock()
	sub := m.advSub
	m.advSub = nil
	m.mu.Unlock()
	if sub != nil {
		sub.Unsubscribe()
	}
	m.mu.Lock()
	m.tab.st.fastPath = false
	for p := range m.tab.checks {
		m.tab.endCheck(p, checkFallback)
	}
	m.mu.Unlock()
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
	conns := m.nc.Stats().Reconnects
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
	if msg.Sub != nil && !msg.Sub.IsValid() {
		return // dropAdvisories has unsubscribed: the fast path is off
	}
	if a.Type != "" {
		m.tab.st.fastPath = true // an advisory arrived: the path works
	}
	if result == advNotNode && m.checkName != "" && a.Client.Name == m.checkName {
		result = advSelfCheck
		close(m.checkSeen)
		m.checkName = ""
	}
	if result == "" && !m.stopped {
		result = m.tab.advisory(nc, a.Reason, conns, now)
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
		// The reconnect count is read after the reply arrived, so a
		// reconnect before it is counted.
		delivered, _ := m.beatSub.Delivered()
		conns := m.nc.Stats().Reconnects
		m.mu.Lock()
		if !m.stopped {
			m.tab.confirmNoResponders(id, delivered, conns, now)
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

// CheckFastPath turns the crash fast path on if it can work, and finds
// out whether it does: whether the server's DISCONNECT advisories reach
// this monitor.
//
// It calls dial with a connection name of wire.MonitorCheckConnName and
// first asks the server, on [wire.UserInfoSubject], which account the
// connection is in and what it may subscribe to. If its user may not ask
// (that one refused request is all it costs: dial's connection, not the
// monitor's, gets the error), is in nats-server's global account, or may
// not subscribe to Config.Advisories, CheckFastPath returns at once with
// an error wrapping [ErrFastPathOff] that says so, and the monitor never
// subscribes: it causes no permission violation and judges by beats and
// probes alone. Otherwise the monitor subscribes to the advisories (also
// when the server does not answer: it cannot tell then), closes the test
// connection and waits for its advisory; while it waits it dials and
// closes again every CheckFastPathEvery, in case the first advisory went
// out before the subscription had crossed the cluster. It returns nil
// once an advisory arrives and the monitor has settled, or, when ctx is
// done, an error wrapping ErrFastPathOff that says why, as far as the
// server tells.
//
// Whenever it returns an error, the monitor takes no advisories: it
// unsubscribes from them if it had subscribed, so that the fast path
// stays off, as the error says, until a later call returns nil.
//
// Call it once Run has started (WaitReady returns nil); until it is
// called, the monitor takes no advisories. dial should reach the
// monitor's own server with the monitor's credentials, since the
// permissions it learns are those of dial's user.
func (m *Monitor) CheckFastPath(ctx context.Context, dial func(name string) (*nats.Conn, error)) error {
	if m.cfg.NoFastPath {
		return fmt.Errorf("%w: turned off", ErrFastPathOff)
	}
	if err := m.Ready(); err != nil {
		return fmt.Errorf("%w: the monitor is not ready: %w", ErrFastPathOff, err)
	}
	if !m.nc.HeadersSupported() {
		// Without headers the server never answers "no responders", so
		// every check would time out and fall back.
		return fmt.Errorf("%w: the server does not support headers, so it cannot answer a probe with no responders", ErrFastPathOff)
	}
	name := wire.MonitorCheckConnName(m.cfg.ID, strings.ToLower(rand.Text()[:10]))
	c, err := dial(name)
	if err != nil {
		return fmt.Errorf("%w: open a test connection: %w", ErrFastPathOff, err)
	}
	info, infoErr := askUserInfo(c, m.cfg.SelfCheckTimeout)
	if why := m.noAccess(info, infoErr); why != "" {
		c.Close()
		return fmt.Errorf("%w: %s", ErrFastPathOff, why)
	}

	seen := make(chan struct{})
	m.mu.Lock()
	m.checkName, m.checkSeen = name, seen
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.checkName = ""
		m.mu.Unlock()
	}()
	if err := m.subscribeAdvisories(); err != nil {
		c.Close()
		m.dropAdvisories()
		return fmt.Errorf("%w: %w", ErrFastPathOff, err)
	}
	if err := m.awaitAdvisory(ctx, c, seen, func() (*nats.Conn, error) { return dial(name) }, info, infoErr); err != nil {
		m.dropAdvisories()
		return err
	}
	return nil
}

// awaitAdvisory closes the test connection c, and dials it again every
// CheckFastPathEvery, until its advisory is seen and the monitor has
// settled, or ctx is done.
func (m *Monitor) awaitAdvisory(ctx context.Context, c *nats.Conn, seen <-chan struct{}, dial func() (*nats.Conn, error), info wire.UserInfo, infoErr error) error {
	tick := time.NewTicker(CheckFastPathEvery)
	defer tick.Stop()
	for {
		c.Close()
		select {
		case <-seen:
			return m.awaitSettled(ctx)
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrFastPathOff, m.whyNoAdvisory(info, infoErr))
		case <-tick.C:
		}
		var err error
		if c, err = dial(); err != nil {
			return fmt.Errorf("%w: open a test connection: %w", ErrFastPathOff, err)
		}
	}
}

// askUserInfo asks the server, on c, which user c is and what it may do.
// If c may not publish the request, the server refuses it with an error
// that it sends before the answer to the flush that follows, so the
// refusal is known once the flush returns.
func askUserInfo(c *nats.Conn, timeout time.Duration) (wire.UserInfo, error) {
	reply := c.NewInbox()
	sub, err := c.SubscribeSync(reply)
	if err != nil {
		return wire.UserInfo{}, fmt.Errorf("subscribe %q: %w", reply, err)
	}
	defer sub.Unsubscribe()
	if err := c.PublishRequest(wire.UserInfoSubject, reply, nil); err != nil {
		return wire.UserInfo{}, fmt.Errorf("request %q: %w", wire.UserInfoSubject, err)
	}
	if err := c.FlushTimeout(timeout); err != nil {
		return wire.UserInfo{}, fmt.Errorf("request %q: %w", wire.UserInfoSubject, err)
	}
	if err := c.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
		return wire.UserInfo{}, err
	}
	msg, err := sub.NextMsg(timeout)
	if err != nil {
		return wire.UserInfo{}, fmt.Errorf("request %q: %w", wire.UserInfoSubject, err)
	}
	if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
		return wire.UserInfo{}, fmt.Errorf("request %q: %w", wire.UserInfoSubject, nats.ErrNoResponders)
	}
	return wire.DecodeUserInfo(msg.Data)
}

// fastPathDoc is where an operator learns how to give a monitor the
// advisories.
const fastPathDoc = "see docs/SECURITY.md, \"Crash fast path\""

// noAccess says why the advisories cannot reach the monitor, from the
// server's answer about its user, or returns "" if they may.
func (m *Monitor) noAccess(info wire.UserInfo, err error) string {
	switch {
	case errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), strconv.Quote(wire.UserInfoSubject)):
		return fmt.Sprintf("the monitor's user may not publish %q, so the monitor cannot tell whether it may subscribe to %q, and does not try; grant both, %s",
			wire.UserInfoSubject, m.cfg.Advisories, fastPathDoc)
	case err != nil:
		return "" // the server did not say: try
	case info.Account == "$G":
		return "the monitor is in nats-server's global account, which receives no advisories: " +
			"run the server with a mesh account (hbmesh server, monitor --embedded and demo do) or " + fastPathDoc
	case !info.Permissions.MaySubscribe(m.cfg.Advisories):
		return fmt.Sprintf("user %s of account %s may not subscribe to %q; grant it, %s",
			userLabel(info), accountLabel(info), m.cfg.Advisories, fastPathDoc)
	}
	return ""
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

// whyNoAdvisory explains why no advisory arrived although the monitor
// may subscribe to them, from what the server said about its user.
func (m *Monitor) whyNoAdvisory(info wire.UserInfo, err error) string {
	if err != nil {
		return fmt.Sprintf("no DISCONNECT advisory reached %q, and the server did not say which account the monitor is in (%v); %s", m.cfg.Advisories, err, fastPathDoc)
	}
	return fmt.Sprintf("no DISCONNECT advisory reached %q: account %s does not import %s; %s",
		m.cfg.Advisories, accountLabel(info), wire.DisconnectAdvisorySubject(info.Account), fastPathDoc)
}

// accountLabel names info's account as an operator knows it: by name,
// with its public key in operator mode.
func accountLabel(info wire.UserInfo) string {
	if info.AccountName != "" && info.AccountName != info.Account {
		return fmt.Sprintf("%s (%s)", info.AccountName, info.Account)
	}
	return info.Account
}

// userLabel names info's user likewise.
func userLabel(info wire.UserInfo) string {
	if info.UserName != "" && info.UserName != info.User {
		return fmt.Sprintf("%s (%s)", info.UserName, info.User)
	}
	return info.User
}
