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

// DefaultWait is how long [GatherExpect] waits for monitors when given zero.
const DefaultWait = time.Second

// Anyone allowed to answer on the control subjects can answer
// (docs/SECURITY.md). These bounds keep such replies from exhausting
// memory or time; replies past them are counted in [Report.Ignored].
const (
	MaxMonitors = 64 // monitors one report takes in
	// MaxPeerStates bounds distinct peers times monitors that sent their
	// peers: 200,000 peers seen by ten monitors take 100 to 300MB.
	MaxPeerStates = 2_000_000
)

// ErrNoMonitors is returned by [GatherExpect] when no monitor answered.
var ErrNoMonitors = errors.New("no monitors answered")

// gatherError says more than the sentinel it wraps.
type gatherError struct {
	msg string
	err error
}

func (e *gatherError) Error() string { return e.msg }
func (e *gatherError) Unwrap() error { return e.err }

// notConnected is the error when nc cannot carry a request: asking
// anyway would only wait out the wait and blame the monitors.
func notConnected(nc *nats.Conn) error {
	if nc.IsClosed() {
		return &gatherError{"status: NATS connection closed", nats.ErrConnectionClosed}
	}
	return &gatherError{"not connected to NATS; reconnecting", nats.ErrConnectionReconnecting}
}

// GatherExpect asks every monitor under prefix for its peers and status
// and merges their answers. It waits at most wait (DefaultWait if zero or
// less), and less once every monitor heard from, and at least expect
// monitors, have answered both requests and a quiet period has passed:
// from the replies alone, a monitor that is down or slower than that
// looks like one that does not exist. The report says how many answered
// ([Report.Expected], [Report.Answered]). It fails with ErrNoMonitors if
// none answered, at once if the server says nothing subscribes to the
// subjects, and at once, wrapping nats.ErrConnectionReconnecting or
// nats.ErrConnectionClosed, if nc is not connected.
func GatherExpect(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration, expect int) (*Report, error) {
	return gather(ctx, nc, prefix, wait, 0, expect)
}

// gather is GatherExpect; pending, if positive, is how many replies may
// wait to be read before NATS drops more, instead of nats.go's default.
func gather(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration, pending, expect int) (*Report, error) {
	if nc == nil {
		return nil, errors.New("status: nil *nats.Conn")
	}
	subj, err := wire.NewSubjects(prefix)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if !nc.IsConnected() {
		return nil, notConnected(nc)
	}
	wait = cmp.Or(max(wait, 0), DefaultWait)
	peersSubj, statusSubj := subj.Control(discovery.EndpointPeers), subj.Control(discovery.EndpointStatus)
	inbox := nc.NewInbox()
	peersReply, statusReply := inbox+"."+discovery.EndpointPeers, inbox+"."+discovery.EndpointStatus
	// A sync subscription needs no goroutine of ours. Past its pending
	// limits NATS drops replies, which the report counts.
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err == nil && pending > 0 {
		err = sub.SetPendingLimits(pending, nats.DefaultSubPendingBytesLimit)
	}
	if err != nil {
		return nil, fmt.Errorf("status: subscribe %q: %w", inbox+".*", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(peersSubj, peersReply, nil); err != nil {
		return nil, fmt.Errorf("status: request %q: %w", peersSubj, err)
	}
	if err := nc.PublishRequest(statusSubj, statusReply, nil); err != nil {
		return nil, fmt.Errorf("status: request %q: %w", statusSubj, err)
	}

	g := newGathering()
	start := time.Now()
	end := start.Add(wait)
	// Replies to one publish come within milliseconds on a healthy server.
	quiet := min(max(wait/4, 10*time.Millisecond), 250*time.Millisecond)
	noResponders := 0
loop:
	for noResponders < 2 {
		until := end
		if q := g.last.Add(quiet); g.heard() && g.answered() == len(g.monitors) && g.answered() >= expect && q.Before(end) {
			until = q // every monitor heard from has answered both requests
		}
		mctx, cancel := context.WithDeadline(ctx, until)
		msg, err := sub.NextMsgWithContext(mctx)
		cancel()
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			// nats.go's word for the server's empty 503 reply: nothing
			// subscribes to a request's subject. Once anything has
			// answered, the server cannot say that, and anyone who may
			// answer can send a 503: it is then an odd reply.
			if g.heard() {
				g.ignored[ignoredOdd]++
			} else {
				noResponders++
			}
		case errors.Is(err, nats.ErrSlowConsumer):
			// replies were dropped; sub.Dropped counts them below
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("status: gather: %w", ctx.Err())
		case err != nil:
			break loop // the wait or the quiet period is over
		case msg.Subject == peersReply || msg.Subject == statusReply:
			g.last = time.Now()
			g.add(msg.Subject == peersReply, msg)
		default:
			g.ignored[ignoredOdd]++
		}
	}
	if n, err := sub.Dropped(); err == nil && n > 0 {
		g.ignored[ignoredDropped] += n
	}
	switch {
	case g.heard():
	case noResponders == 2: // the server said so at once: nobody listens there
		return nil, &gatherError{fmt.Sprintf("no monitor is subscribed on %s (wrong --prefix?)", peersSubj), ErrNoMonitors}
	case !nc.IsConnected():
		return nil, notConnected(nc) // lost while we waited
	case g.ignoredTotal() > 0:
		return nil, fmt.Errorf("%w on %s within %s (%d replies ignored)", ErrNoMonitors, peersSubj, wait, g.ignoredTotal())
	default:
		return nil, fmt.Errorf("%w on %s within %s", ErrNoMonitors, peersSubj, wait)
	}
	r := g.report(start, peersSubj)
	if r.Expected = expect; r.Answered() < expect {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d expected monitors answered both requests within %s", r.Answered(), expect, wait))
	}
	return r, nil
}

// monitorKey names one monitor: its id, and its micro instance id, which
// tells apart monitors that share an id.
type monitorKey struct{ id, instance string }

// gathering accumulates replies. It is owned by gather's goroutine.
type gathering struct {
	monitors map[monitorKey]*Monitor // at most MaxMonitors
	replies  map[monitorKey]*discovery.PeersResponse
	// peers holds the id of every peer in replies: times len(replies),
	// the states a report holds, which maxStates (MaxPeerStates, less in
	// tests) bounds.
	peers     map[string]struct{}
	maxStates int
	ignored   [ignoredKinds]int
	firstBad  string // the first bad reply, and what is wrong with it
	last      time.Time
}

// Why a reply was ignored, for Report.Ignored and its warnings.
const (
	ignoredBad      = iota // an error reply, or one no monitor sends (Validate)
	ignoredMonitors        // from a monitor beyond MaxMonitors
	ignoredPeers           // its peers would pass MaxPeerStates
	ignoredRepeat          // a monitor's second reply to one request
	ignoredDropped         // dropped by NATS: the subscription's buffer was full
	ignoredOdd             // on another subject, or a 503 after replies
	ignoredKinds
)

func newGathering() *gathering {
	return &gathering{monitors: map[monitorKey]*Monitor{}, replies: map[monitorKey]*discovery.PeersResponse{},
		peers: map[string]struct{}{}, maxStates: MaxPeerStates}
}

func (g *gathering) heard() bool { return len(g.monitors) > 0 || g.ignored[ignoredBad] > 0 }

func (g *gathering) ignoredTotal() (n int) {
	for _, k := range g.ignored {
		n += k
	}
	return n
}

func (g *gathering) answered() (n int) {
	for _, m := range g.monitors {
		if m.answeredBoth() {
			n++
		}
	}
	return n
}

// add reads one reply into its monitor, or counts it as ignored.
func (g *gathering) add(isPeers bool, msg *nats.Msg) {
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
	m := g.monitors[key]
	why := -1
	switch {
	case err != nil:
		why = ignoredBad
		if g.firstBad == "" {
			g.firstBad = fmt.Sprintf("on %s: %v", msg.Subject, err)
		}
	case m == nil && len(g.monitors) >= MaxMonitors:
		why = ignoredMonitors
	case m != nil && (isPeers && m.PeersAnswered || !isPeers && m.Status):
		// Each monitor answers each request once: this is another one
		// under the same ids, too old to send an instance id, or forged.
		why = ignoredRepeat
	case isPeers && !g.fits(&ps):
		why = ignoredPeers
	case m == nil:
		m = &Monitor{ID: key.id, Instance: key.instance}
		g.monitors[key] = m
	}
	switch {
	case why >= 0:
		g.ignored[why]++
	case !isPeers:
		m.Status, m.Version, m.Peers = true, st.Version, st.Peers
		m.Ready, m.ReadyError, m.Connected, m.Impaired = st.Ready, st.ReadyError, st.Connected, st.Impaired
	default:
		m.PeersAnswered, m.Truncated = true, ps.Truncated
		if !m.Status {
			m.Peers = ps.Total // until the status reply says
		}
		g.replies[key] = &ps
		for i := range ps.Peers {
			g.peers[ps.Peers[i].ID] = struct{}{}
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
	r := &Report{Type: ReportType, Time: now.UTC(), Subject: subject, Ignored: g.ignoredTotal()}
	for key, m := range g.monitors {
		for other := range g.monitors {
			if other.id == key.id {
				m.Instances++
			}
		}
		r.Monitors = append(r.Monitors, *m)
	}
	slices.SortFunc(r.Monitors, func(a, b Monitor) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Instance, b.Instance))
	})
	replies := map[string]*discovery.PeersResponse{}
	for key, rep := range g.replies {
		replies[g.monitors[key].Column()] = rep
	}
	r.Peers = merge(r.Monitors, replies)
	for i, m := range r.Monitors {
		if m.Instances < 2 || i > 0 && r.Monitors[i-1].ID == m.ID {
			continue // one of its own, or warned about
		}
		var names []string
		for _, o := range r.Monitors[i : i+m.Instances] {
			names = append(names, cmp.Or(o.Instance, "?"))
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d monitors answer as %q (instances %s): give each its own --id",
			m.Instances, m.ID, strings.Join(names, ", ")))
	}
	odd := ": is something other than monitors answering on " + subject + "?"
	for kind, why := range [ignoredKinds][2]string{ // noun, the rest
		ignoredBad:      {"bad reply", ", the first " + g.firstBad},
		ignoredMonitors: {"reply", fmt.Sprintf(" from more than %d monitors%s", MaxMonitors, odd)},
		ignoredPeers:    {"peers reply", fmt.Sprintf(" past %d peer states (peers × monitors)%s", MaxPeerStates, odd)},
		ignoredRepeat:   {"reply", " repeating a monitor and instance id already heard (monitors too old to send an instance id share an id?)" + odd},
		ignoredDropped:  {"reply", " NATS dropped, coming faster than they could be read: is something flooding the replies to " + subject + "?"},
		ignoredOdd:      {"message", " besides the replies to the requests on " + subject},
	} {
		if n := g.ignored[kind]; n > 0 {
			r.Warnings = append(r.Warnings, "ignored "+count(n, why[0])+why[1])
		}
	}
	return r
}
