package status

import (
	"cmp"
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
	"github.com/hbmesh/hbmesh/wire"
)

// DefaultWait is how long [Gather] waits for monitors when Wait is zero.
const DefaultWait = time.Second

// The bounds that keep replies from whoever may answer (see the package
// doc) from exhausting memory or time.
const (
	MaxMonitors = 64 // monitors one report takes in
	// MaxPeerStates bounds distinct peers times monitors that sent their
	// peers: 200,000 peers seen by ten monitors take 100 to 300MB.
	MaxPeerStates = 2_000_000
)

// ErrNoMonitors is returned by [Gather] when no monitor answered.
var ErrNoMonitors = errors.New("no monitors answered")

// gatherError says more than the sentinel it wraps.
type gatherError struct {
	msg string
	err error
}

func (e *gatherError) Error() string { return e.msg }
func (e *gatherError) Unwrap() error { return e.err }

// errReconnecting is the error while nc is reconnecting: asking anyway
// would only wait out the wait and blame the monitors.
var errReconnecting = &gatherError{"not connected to NATS; reconnecting", nats.ErrConnectionReconnecting}

// Gather asks every monitor under o.Prefix for its peers and status and
// merges their answers. It waits at most o.Wait, and less once every
// monitor heard from, and at least o.Expect monitors, have answered both
// requests and a quiet period has passed: from the replies alone, a
// monitor that is down or slower than that looks like one that does not
// exist. The report says how many answered ([Report.Expected],
// [Report.Answered]). It fails with ErrNoMonitors if none answered, at
// once if the server says nothing subscribes to the subjects, and at
// once, wrapping nats.ErrConnectionReconnecting, if nc is reconnecting.
// Gather uses only Prefix, Wait and Expect of o.
func Gather(ctx context.Context, nc *nats.Conn, o Options) (*Report, error) {
	subj, err := wire.NewSubjects(cmp.Or(o.Prefix, wire.DefaultPrefix))
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if nc.IsReconnecting() {
		return nil, errReconnecting
	}
	wait := cmp.Or(max(o.Wait, 0), DefaultWait)
	inbox := nc.NewInbox()
	// A sync subscription needs no goroutine of ours. Past its pending
	// limits NATS drops replies, which the report counts.
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err == nil && o.pending > 0 {
		err = sub.SetPendingLimits(o.pending, nats.DefaultSubPendingBytesLimit)
	}
	if err != nil {
		return nil, fmt.Errorf("status: subscribe %q: %w", inbox+".*", err)
	}
	defer sub.Unsubscribe()
	for _, ep := range []string{discovery.EndpointPeers, discovery.EndpointStatus} {
		if err := nc.PublishRequest(subj.Control(ep), inbox+"."+ep, nil); err != nil {
			return nil, fmt.Errorf("status: request %q: %w", subj.Control(ep), err)
		}
	}
	peersSubj, peersReply := subj.Control(discovery.EndpointPeers), inbox+"."+discovery.EndpointPeers
	g := newGathering()
	start := time.Now()
	end := start.Add(wait)
	// Replies to one publish come within milliseconds on a healthy server.
	quiet := min(max(wait/4, 10*time.Millisecond), 250*time.Millisecond)
loop:
	for {
		until := end
		if q := g.last.Add(quiet); !g.last.IsZero() && g.both >= max(len(g.monitors), o.Expect) && q.Before(end) {
			until = q // every monitor heard from has answered both requests
		}
		mctx, cancel := context.WithDeadline(ctx, until)
		msg, err := sub.NextMsgWithContext(mctx)
		cancel()
		switch {
		case errors.Is(err, nats.ErrNoResponders) && g.last.IsZero():
			// nats.go's word for the server's empty 503 reply: nothing
			// subscribes to the subjects, so it says so at once. Once a
			// reply has come, the server cannot say that, and anyone who
			// may answer can send a 503: it is then an odd reply.
			msg := fmt.Sprintf("no monitor is subscribed on %s (wrong --prefix?)", peersSubj)
			return nil, &gatherError{msg, ErrNoMonitors}
		case errors.Is(err, nats.ErrNoResponders):
			g.ignore("an empty 503 (no responders) after other replies")
		case errors.Is(err, nats.ErrSlowConsumer):
			// replies were dropped; sub.Dropped counts them below
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("status: gather: %w", ctx.Err())
		case err != nil:
			break loop // the wait or the quiet period is over
		case msg.Subject == peersReply || msg.Subject == inbox+"."+discovery.EndpointStatus:
			g.add(msg.Subject == peersReply, msg)
		default:
			g.ignore("on %s: not a reply to a request", msg.Subject)
		}
	}
	if n, err := sub.Dropped(); err == nil {
		g.dropped = n
	}
	switch {
	case !g.last.IsZero():
	case nc.IsReconnecting():
		return nil, errReconnecting // lost while we waited
	default:
		return nil, fmt.Errorf("%w on %s within %s", ErrNoMonitors, peersSubj, wait)
	}
	r := g.report(start, peersSubj)
	if r.Expected = max(o.Expect, 0); r.Answered() < r.Expected {
		r.Warnings = append(r.Warnings,
			fmt.Sprintf("%d of %d expected monitors answered both requests within %s", r.Answered(), r.Expected, wait))
	}
	return r, nil
}

// monitorKey names one monitor: its id, and its micro instance id, which
// tells apart monitors that share an id.
type monitorKey struct{ id, instance string }

// gathering accumulates replies. It is owned by Gather's goroutine.
type gathering struct {
	monitors map[monitorKey]*Monitor // at most MaxMonitors
	replies  map[monitorKey]*discovery.PeersResponse
	// peers holds the id of every peer in replies: times len(replies),
	// the states a report holds, which maxStates (MaxPeerStates, less in
	// tests) bounds.
	peers     map[string]struct{}
	maxStates int
	ignored   int       // replies not read
	why       string    // why the first of them was not
	dropped   int       // replies NATS dropped, not counted in ignored
	both      int       // monitors that answered both requests
	last      time.Time // when the last reply came; zero before the first
}

func newGathering() *gathering {
	return &gathering{monitors: map[monitorKey]*Monitor{}, replies: map[monitorKey]*discovery.PeersResponse{},
		peers: map[string]struct{}{}, maxStates: MaxPeerStates}
}

// ignore counts a reply not read, and keeps why (a fmt format and its
// args) if it is the first.
func (g *gathering) ignore(format string, args ...any) {
	if g.ignored++; g.ignored == 1 {
		g.why = fmt.Sprintf(format, args...)
	}
}

// add reads one reply into its monitor, or counts it as ignored.
func (g *gathering) add(isPeers bool, msg *nats.Msg) {
	g.last = time.Now()
	var st discovery.StatusResponse
	var ps discovery.PeersResponse
	var key monitorKey
	var err error
	switch code := msg.Header.Get(micro.ErrorCodeHeader); {
	case code != "":
		err = errors.New(code + " " + msg.Header.Get(micro.ErrorHeader))
	case isPeers:
		if err = json.Unmarshal(msg.Data, &ps); err == nil {
			err = ps.Validate()
		}
		key = monitorKey{ps.Monitor, ps.Instance}
	default:
		if err = json.Unmarshal(msg.Data, &st); err == nil {
			err = st.Validate()
		}
		key = monitorKey{st.Monitor, st.Instance}
	}
	m, known := g.monitors[key]
	if !known {
		m = &Monitor{ID: key.id, Instance: key.instance}
	}
	switch {
	case err != nil:
		g.ignore("on %s: %v", msg.Subject, err)
	case !known && len(g.monitors) >= MaxMonitors:
		g.ignore("on %s: more than %d monitors", msg.Subject, MaxMonitors)
	case isPeers && m.PeersAnswered || !isPeers && m.Status:
		// Each monitor answers each request once: this is another one
		// under the same ids, or forged.
		g.ignore("on %s: a second reply from monitor %q instance %q", msg.Subject, key.id, key.instance)
	case isPeers && !g.fits(&ps):
		g.ignore("on %s: past %d peer states (peers × monitors)", msg.Subject, MaxPeerStates)
	case isPeers:
		g.monitors[key], g.replies[key] = m, &ps
		m.PeersAnswered, m.Truncated = true, ps.Truncated
		if m.Status {
			g.both++
		} else {
			m.Peers = ps.Total // until the status reply says
		}
		for i := range ps.Peers {
			g.peers[ps.Peers[i].ID] = struct{}{}
		}
	default:
		g.monitors[key] = m
		m.Status, m.Version, m.Peers = true, st.Version, st.Peers
		m.Ready, m.ReadyError, m.Connected = st.Ready, st.ReadyError, st.Connected
		m.Impaired, m.FastPath = st.Impaired, st.FastPath
		if m.PeersAnswered {
			g.both++
		}
	}
}

// fits reports whether the report stays within maxStates with r among
// its peers replies. Each peer row holds a state for every monitor that
// sent its peers ("missing" if it does not list the peer): a few monitors
// of one fleet list the same peers, but fake ones could each list others.
func (g *gathering) fits(r *discovery.PeersResponse) bool {
	n := len(g.peers)
	for i := range r.Peers {
		if _, ok := g.peers[r.Peers[i].ID]; !ok {
			n++
		}
	}
	return n*(len(g.replies)+1) <= g.maxStates
}

func (g *gathering) report(now time.Time, subject string) *Report {
	r := &Report{Type: ReportType, Time: now.UTC(), Subject: subject, Ignored: g.ignored + g.dropped}
	for _, m := range g.monitors {
		r.Monitors = append(r.Monitors, *m)
	}
	slices.SortFunc(r.Monitors, func(a, b Monitor) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Instance, b.Instance))
	})
	instances := map[string][]string{} // of each monitor id, in order
	for _, m := range r.Monitors {
		instances[m.ID] = append(instances[m.ID], cmp.Or(m.Instance, "?"))
	}
	replies := map[string]*discovery.PeersResponse{}
	for i := range r.Monitors {
		m := &r.Monitors[i]
		m.Instances = len(instances[m.ID])
		replies[m.Column()] = g.replies[monitorKey{m.ID, m.Instance}]
		if m.Instances > 1 && (i == 0 || r.Monitors[i-1].ID != m.ID) { // warn once an id
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d monitors answer as %q (instances %s): "+
				"give each its own --id", m.Instances, m.ID, strings.Join(instances[m.ID], ", ")))
		}
	}
	r.Peers = merge(r.Monitors, replies)
	if g.ignored > 0 {
		r.Warnings = append(r.Warnings, "ignored "+count(g.ignored, "reply")+", the first "+g.why)
	}
	if g.dropped > 0 {
		r.Warnings = append(r.Warnings, "NATS dropped "+count(g.dropped, "reply")+
			", coming faster than they could be read")
	}
	return r
}
