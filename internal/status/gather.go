package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/printable"
	"github.com/hbmesh/hbmesh/wire"
)

// DefaultWait is how long [Gather] waits for monitors when given zero.
const DefaultWait = time.Second

// ErrNoMonitors is returned by [Gather] when no monitor answered. The CLI
// can tell it apart from a broken connection.
var ErrNoMonitors = errors.New("no monitors answered")

// gatherError is an error of Gather whose message says more than the
// sentinel it wraps (ErrNoMonitors, or nats.go's connection errors).
type gatherError struct {
	msg string
	err error
}

func (e *gatherError) Error() string { return e.msg }
func (e *gatherError) Unwrap() error { return e.err }

// notConnected is Gather's error when nc cannot carry a request: asking
// anyway would only wait out the wait and blame the monitors.
func notConnected(nc *nats.Conn) error {
	if nc.IsClosed() {
		return &gatherError{"status: NATS connection closed", nats.ErrConnectionClosed}
	}
	return &gatherError{"not connected to NATS; reconnecting", nats.ErrConnectionReconnecting}
}

// quiet is how long Gather waits for another monitor once every monitor
// that has answered so far has answered both requests. Replies to one
// publish arrive within milliseconds of each other on a healthy server.
func quiet(wait time.Duration) time.Duration {
	return min(max(wait/4, 10*time.Millisecond), 250*time.Millisecond)
}

// Gather asks every monitor under prefix for its peers and status and
// merges their answers. It waits at most wait (DefaultWait if zero or
// less) and returns an error wrapping ErrNoMonitors if none answered; if
// the server says no monitor subscribes to the subjects at all, it
// returns at once with an error that says so. If nc is not connected it
// returns at once with an error wrapping nats.ErrConnectionReconnecting
// (or nats.ErrConnectionClosed) rather than wait for answers that cannot
// come.
func Gather(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration) (*Report, error) {
	return gather(ctx, nc, prefix, wait, 0, 0)
}

// GatherExpect is Gather for a mesh that runs expect monitors: it does
// not stop before the wait is over until that many have answered both
// requests, and the report says how many did ([Report.Expected],
// [Report.Answered]), so a monitor that does not answer at all, or
// answers late, is seen. Gather stops a short quiet period after the
// last reply once every monitor heard from has answered both requests,
// and cannot tell a monitor that is missing from one that does not
// exist.
func GatherExpect(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration, expect int) (*Report, error) {
	return gather(ctx, nc, prefix, wait, 0, expect)
}

// gather is Gather; pending, if positive, is how many replies may wait
// to be read before NATS drops more, instead of nats.go's default, and
// expect is as in GatherExpect.
func gather(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration, pending, expect int) (*Report, error) {
	if nc == nil {
		return nil, errors.New("status: nil *nats.Conn")
	}
	if wait <= 0 {
		wait = DefaultWait
	}
	subj, err := wire.NewSubjects(prefix)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if !nc.IsConnected() {
		return nil, notConnected(nc)
	}
	peersSubj, statusSubj := subj.Control(discovery.EndpointPeers), subj.Control(discovery.EndpointStatus)
	inbox := nc.NewInbox()
	peersReply, statusReply := inbox+"."+discovery.EndpointPeers, inbox+"."+discovery.EndpointStatus
	// A sync subscription needs no goroutine of ours and buffers up to
	// nats.go's default pending limits, far more monitors than exist.
	// Beyond them NATS drops replies, which the report counts.
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("status: subscribe %q: %w", inbox+".*", err)
	}
	defer sub.Unsubscribe()
	if pending > 0 {
		if err := sub.SetPendingLimits(pending, nats.DefaultSubPendingBytesLimit); err != nil {
			return nil, fmt.Errorf("status: subscribe %q: %w", inbox+".*", err)
		}
	}
	if err := nc.PublishRequest(peersSubj, peersReply, nil); err != nil {
		return nil, fmt.Errorf("status: request %q: %w", peersSubj, err)
	}
	if err := nc.PublishRequest(statusSubj, statusReply, nil); err != nil {
		return nil, fmt.Errorf("status: request %q: %w", statusSubj, err)
	}

	g := newGathering()
	start := time.Now()
	end := start.Add(wait)
	noResponders := 0
	for {
		until := end
		if q := g.last.Add(quiet(wait)); g.complete() && g.bothAnswered() >= expect && q.Before(end) {
			until = q
		}
		mctx, cancel := context.WithDeadline(ctx, until)
		msg, err := sub.NextMsgWithContext(mctx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			// The server had no subscriber for one of the requests;
			// nats.go turns its empty 503 reply into this error. Once
			// anything has answered, the server cannot say that: anyone
			// who may answer can send the same 503, so it is then only
			// an odd reply.
			if len(g.monitors) > 0 {
				g.ignore(ignoredOdd)
				continue
			}
			if noResponders++; noResponders == 2 {
				break
			}
			continue
		}
		if errors.Is(err, nats.ErrSlowConsumer) {
			continue // replies were dropped; sub.Dropped counts them below
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("status: gather: %w", ctx.Err())
			}
			break // our deadline: the wait or the quiet period is over
		}
		switch msg.Subject {
		case peersReply, statusReply:
			g.last = time.Now()
			g.add(msg.Subject == peersReply, msg)
		default:
			g.ignore(ignoredOdd)
		}
	}
	if n, err := sub.Dropped(); err == nil && n > 0 {
		g.ignored[ignoredDropped] += n
	}
	if len(g.monitors) == 0 {
		switch {
		case noResponders == 2:
			// The server said so at once: nobody listens there at all.
			return nil, &gatherError{fmt.Sprintf("no monitor is subscribed on %s (wrong --prefix?)", peersSubj), ErrNoMonitors}
		case !nc.IsConnected():
			return nil, notConnected(nc) // lost while we waited
		}
		return nil, fmt.Errorf("%w on %s within %s%s", ErrNoMonitors, peersSubj, wait, g.ignoredNote())
	}
	r := g.report(start, peersSubj)
	if expect > 0 {
		r.Expected = expect
		if n := r.Answered(); n < expect {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d expected monitors answered both requests within %s", n, expect, wait))
		}
	}
	return r, nil
}

// gathering accumulates replies. It is owned by Gather's goroutine.
type gathering struct {
	monitors map[string]*Monitor
	// instances holds, by monitor id, the replies of each monitor under
	// it, as far as replies tell monitors apart (see answered): at most
	// maxInstanceIDs of them. The report chooses which one the row
	// shows (see shown).
	instances map[string][]*instance
	// peersRead counts the peers replies in instances.
	peersRead int
	// replies counts the replies under each monitor id to each request
	// (true: peers), to find monitors that share an id.
	replies map[bool]map[string]int
	// bad counts the replies that were errors or did not decode, under
	// the id of their error row.
	bad map[string]int
	// distinct holds the id of every peer the replies in peers and
	// others list; times the number of those replies, it bounds the
	// report's size, which MaxPeerStates bounds.
	distinct map[string]struct{}
	// maxStates is MaxPeerStates, smaller in tests.
	maxStates int
	ignored   [ignoredKinds]int
	last      time.Time
}

// Why a reply was ignored, for Report.Ignored and its warnings.
const (
	ignoredMonitors = iota // under a monitor id beyond MaxMonitors
	ignoredPeers           // its peers would pass MaxPeerStates
	ignoredDropped         // dropped by NATS: the subscription's buffer was full
	ignoredShared          // under a monitor id past maxInstanceIDs monitors sharing it
	ignoredOdd             // on another subject, or a 503 after replies
	ignoredKinds
)

func newGathering() *gathering {
	return &gathering{
		monitors:  map[string]*Monitor{},
		instances: map[string][]*instance{},
		replies:   map[bool]map[string]int{true: {}, false: {}},
		bad:       map[string]int{},
		distinct:  map[string]struct{}{},
		maxStates: MaxPeerStates,
	}
}

func (g *gathering) ignore(kind int) { g.ignored[kind]++ }

// ignoredNote says, after an error that no monitor answered, that
// replies were ignored, since those may have been the monitors'.
func (g *gathering) ignoredNote() string {
	n := 0
	for _, k := range g.ignored {
		n += k
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d replies ignored)", n)
}

// admit reports whether a reply under monitor id may be read: its id is
// known already, or there is room for another.
func (g *gathering) admit(id string) bool {
	if _, ok := g.monitors[id]; ok || len(g.monitors) < MaxMonitors {
		return true
	}
	g.ignore(ignoredMonitors)
	return false
}

// fits reports whether the report stays within MaxPeerStates with r
// among its peers replies. Each peer row holds a state for every monitor
// that sent its peers ("missing" if it does not list the peer), those
// sharing an id included, so the report holds distinct peers × peers
// replies states: a few monitors of one fleet list the same peers, but
// fake monitors could each list different ones. Every peers reply that
// is read is kept, so r would be one more.
func (g *gathering) fits(r *discovery.PeersResponse) bool {
	peers := len(g.distinct)
	for i := range r.Peers {
		if _, ok := g.distinct[r.Peers[i].ID]; !ok {
			peers++
		}
	}
	replies := g.peersRead + 1
	return peers*replies <= g.maxStates
}

// fail records a reply that was an error or did not decode, under an
// error row named after the subject it came on: the reply cannot be
// trusted to name its monitor. The row keeps the first such error, and
// the report says how many there were.
func (g *gathering) fail(subject, msg string) {
	id := "?" + subject
	if m := g.monitor(id); m.Error == "" {
		m.Error = msg
	}
	g.bad[id]++
}

// answered counts a reply of monitor id, from instance, to one request,
// and returns the instance of id it belongs to: the first with that
// instance id that lacks that kind of reply, or a new one. So every
// reply is read, even where instance ids cannot tell monitors apart:
// replies without one (monitors too old to send it) and replies that
// repeat an instance id (a forger can send any); the report pairs
// those anew whatever order they came in (see canonical). Past
// maxInstanceIDs instances under id, it returns nil: the reply is
// counted in Report.Ignored, since its verdicts are not read.
func (g *gathering) answered(isPeers bool, id, inst string) *instance {
	g.replies[isPeers][id]++
	m := g.monitor(id)
	if inst != "" && len(m.InstanceIDs) < maxInstanceIDs && !slices.Contains(m.InstanceIDs, inst) {
		m.InstanceIDs = append(m.InstanceIDs, inst)
	}
	m.Instances = max(m.Instances, g.replies[isPeers][id], len(m.InstanceIDs))
	for _, x := range g.instances[id] {
		if x.id == inst && (isPeers && x.peers == nil || !isPeers && x.status == nil) {
			return x
		}
	}
	if len(g.instances[id]) >= maxInstanceIDs {
		g.ignore(ignoredShared)
		return nil
	}
	x := &instance{id: inst}
	g.instances[id] = append(g.instances[id], x)
	return x
}

// complete reports whether every monitor heard from has answered both
// requests (or failed one: an error row has no instances), so only a
// new monitor could still add news.
func (g *gathering) complete() bool {
	if len(g.monitors) == 0 {
		return false
	}
	for _, list := range g.instances {
		for _, x := range list {
			if !x.answeredBoth() {
				return false
			}
		}
	}
	return true
}

// bothAnswered counts the monitors, those sharing an id included, that
// have answered both requests, as Report.Answered does.
func (g *gathering) bothAnswered() int {
	n := 0
	for _, list := range g.instances {
		for _, x := range list {
			if x.answeredBoth() {
				n++
			}
		}
	}
	return n
}

func (g *gathering) monitor(id string) *Monitor {
	m, ok := g.monitors[id]
	if !ok {
		m = &Monitor{ID: id}
		g.monitors[id] = m
	}
	return m
}

// add records one reply. A reply that is an error, does not decode, or
// holds what no monitor sends (see checkPeers and checkStatus) is kept as
// an error row under the subject it came on, so an operator sees that
// something answered badly.
func (g *gathering) add(isPeers bool, msg *nats.Msg) {
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		// Error replies carry no body to name the monitor; the reply
		// subject is the best label we have.
		g.fail(msg.Subject, code+" "+msg.Header.Get(micro.ErrorHeader))
		return
	}
	if isPeers {
		var r discovery.PeersResponse
		err := json.Unmarshal(msg.Data, &r)
		if err == nil {
			err = checkPeers(&r)
		}
		if err != nil {
			g.fail(msg.Subject, fmt.Sprintf("bad peers reply: %v", err))
			return
		}
		if !g.admit(r.Monitor) {
			return
		}
		if !g.fits(&r) {
			g.ignore(ignoredPeers)
			return
		}
		x := g.answered(true, r.Monitor, r.Instance)
		if x == nil {
			return
		}
		x.peers = &r
		g.peersRead++
		for i := range r.Peers {
			g.distinct[r.Peers[i].ID] = struct{}{}
		}
		return
	}
	var r discovery.StatusResponse
	err := json.Unmarshal(msg.Data, &r)
	if err == nil {
		err = checkStatus(&r)
	}
	if err != nil {
		g.fail(msg.Subject, fmt.Sprintf("bad status reply: %v", err))
		return
	}
	if !g.admit(r.Monitor) {
		return
	}
	if x := g.answered(false, r.Monitor, r.Instance); x != nil {
		x.status = &r
	}
}

func (g *gathering) report(now time.Time, subject string) *Report {
	r := &Report{Type: ReportType, Time: now.UTC(), Subject: subject}
	peers := map[string]*discovery.PeersResponse{}
	others := map[string][]*discovery.PeersResponse{}
	for id, m := range g.monitors {
		if n := g.bad[id]; n > 1 {
			m.Error += fmt.Sprintf(" (%d bad replies on this subject)", n)
		}
		slices.Sort(m.InstanceIDs)
		list := canonical(g.instances[id])
		for _, x := range list {
			// The first status reply of an instance id that names
			// where it runs, in canonical order: a repeat of the id
			// (a forger's) cannot make it depend on who came first.
			if st := x.status; st != nil && x.id != "" && (st.Host != "" || st.PID != 0) &&
				m.Where[x.id] == "" && slices.Contains(m.InstanceIDs, x.id) {
				if m.Where == nil {
					m.Where = map[string]string{}
				}
				m.Where[x.id] = strings.TrimSpace(fmt.Sprintf("%s pid %d", st.Host, st.PID))
			}
		}
		if len(list) > 0 {
			i := shown(list)
			show := list[i]
			list = slices.Delete(list, i, i+1) // canonical's own slice
			s := show.summary()
			m.Instance, m.Version, m.Status, m.Ready, m.ReadyError, m.Impaired = s.ID, s.Version, s.Status, s.Ready, s.ReadyError, s.Impaired
			m.Peers, m.PeersAnswered, m.Truncated = s.Peers, s.PeersAnswered, s.Truncated
			if show.status != nil {
				m.Connected = show.status.Connected
			}
			if show.peers != nil {
				peers[id] = show.peers
			}
		}
		for _, x := range list {
			m.Others = append(m.Others, x.summary())
			if x.peers != nil {
				others[id] = append(others[id], x.peers)
			}
		}
		if len(m.Others) > 0 {
			m.Instances = max(m.Instances, 1+len(m.Others))
		}
		r.Monitors = append(r.Monitors, *m)
	}
	slices.SortFunc(r.Monitors, func(a, b Monitor) int { return strings.Compare(a.ID, b.ID) })
	r.Peers = merge(r.Monitors, peers, others)
	for _, m := range r.Monitors {
		if m.Instances > 1 {
			which := ""
			if len(m.InstanceIDs) > 1 {
				names := make([]string, len(m.InstanceIDs))
				for i, id := range m.InstanceIDs {
					names[i] = id
					if w := m.Where[id]; w != "" {
						names[i] += " on " + printable.String(w)
					}
				}
				if more := m.Instances - len(names); more > 0 && len(names) == maxInstanceIDs {
					names = append(names, fmt.Sprintf("and %d more", more))
				}
				which = " (instances " + strings.Join(names, ", ") + ")"
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d monitors answer as %q%s: give each its own --id", m.Instances, m.ID, which))
		}
	}
	for kind, n := range g.ignored {
		if n == 0 {
			continue
		}
		r.Ignored += n
		r.Warnings = append(r.Warnings, ignoredWarning(kind, n, subject))
	}
	return r
}

// ignoredWarning explains n ignored replies of one kind; subject is the
// peers subject. Only monitors should answer there (docs/SECURITY.md).
func ignoredWarning(kind, n int, subject string) string {
	switch kind {
	case ignoredMonitors:
		return fmt.Sprintf("ignored %d replies under more than %d monitor ids: is something other than monitors answering on %s?", n, MaxMonitors, subject)
	case ignoredPeers:
		return fmt.Sprintf("ignored %d peers replies past %d peer states (peers × monitors): is something other than monitors answering on %s?", n, MaxPeerStates, subject)
	case ignoredDropped:
		return fmt.Sprintf("%d replies dropped: they came faster than they could be read; is something flooding the replies to %s?", n, subject)
	case ignoredShared:
		return fmt.Sprintf("ignored %d replies past %d monitors under one id: is something other than monitors answering on %s?", n, maxInstanceIDs, subject)
	}
	return fmt.Sprintf("ignored %d messages that were not replies to the requests on %s", n, subject)
}
