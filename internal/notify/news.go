package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/monitor"
)

// lookupTimeout bounds the stream lookup of what came before an event.
const lookupTimeout = 5 * time.Second

// The headers of a status message (nats.go does not export their names).
const (
	statusHdr = "Status"
	descrHdr  = "Description"
)

// record is an event as the stream holds it.
type record struct {
	seq uint64 // its stream sequence
	ev  monitor.Event
}

// prior is what the stream held about an event's peer before the event:
// the last record of each of the peer's event subjects (one per state)
// ahead of it.
type prior []record

// latest returns the most recent record of p, or nil.
func (p prior) latest() *monitor.Event {
	var best *monitor.Event
	var at uint64
	for i := range p {
		if p[i].seq > at {
			best, at = &p[i].ev, p[i].seq
		}
	}
	return best
}

// lastIn returns the last record of p in state st, or nil.
func (p prior) lastIn(st monitor.State) *monitor.Event {
	for i := range p {
		if p[i].ev.State == st {
			return &p[i].ev
		}
	}
	return nil
}

// back reports whether ev takes its peer out of the dead state: by its
// own word (Prev), or by the stream's when it said so before ev (p). Of
// two monitors' reports of one transition the stream keeps the first,
// and its monitor may not have seen the death the other one recorded: a
// new boot reported as "was suspect" after another monitor's "dead" ends
// that death all the same.
func back(ev *monitor.Event, p prior) bool {
	switch {
	case ev.State == monitor.StateDead || ev.State == monitor.StateSuspect:
		return false
	case ev.Prev == monitor.StateDead:
		return true
	}
	q := p.latest()
	return q != nil && q.State == monitor.StateDead
}

// noNews reports whether ev says nothing the stream did not say before
// it (p). Monitors that report one transition within the stream's
// duplicate window leave one record; these are the reports that come
// later, or from an older view, and that notify must not act on again:
//
//   - an older view of the same boot: a record with a higher seq is
//     already there (a monitor restarted from restart memory after the
//     peer died while it was down judges the peer from the seq it saved);
//   - no change: the peer's latest record has the same state and boot (a
//     second monitor's verdict, with another seq or after the window);
//   - the same transition as the last record in its state, its
//     Nats-Msg-Id computed afresh (a monitor that lost NATS for longer
//     than the window reports the whole way there again);
//   - a boot the stream's latest word on the peer says was replaced (a
//     restart to a new boot): a slower monitor's verdict on the old
//     process.
//
// A conflict report repeats its state by nature and names the other
// boot: it is news unless it is the same transition.
func noNews(ev *monitor.Event, p prior) bool {
	for i := range p {
		if q := &p[i].ev; q.Boot == ev.Boot && q.Seq > ev.Seq {
			return true
		}
	}
	if q := p.latest(); q != nil && !ev.Conflict && (q.Boot == ev.Boot && q.State == ev.State || q.Restart && q.PrevBoot == ev.Boot) {
		return true
	}
	q := p.lastIn(ev.State)
	return q != nil && events.MsgID(q) == events.MsgID(ev)
}

// directGet is the request of a batch direct get: the last message of
// each subject matching MultiLast, among those up to UpToSeq.
type directGet struct {
	MultiLast []string `json:"multi_last"`
	UpToSeq   uint64   `json:"up_to_seq"`
}

// before returns what the stream held about d's peer before d, by a
// direct get (the stream must allow them). A record that is not an
// hbmesh event says nothing and is left out.
func (n *Notifier) before(ctx context.Context, d *delivery) (prior, error) {
	if d.seq <= 1 {
		return nil, nil // nothing before it (and up_to_seq 0 means "all")
	}
	req, err := json.Marshal(directGet{MultiLast: []string{n.subj.Event("*", d.ev.ID)}, UpToSeq: d.seq - 1})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	inbox := n.nc.NewInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := n.nc.PublishRequest("$JS.API.DIRECT.GET."+n.cfg.Stream, inbox, req); err != nil {
		return nil, err
	}
	var p prior
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("direct get: %w", err)
		}
		switch status := m.Header.Get(statusHdr); status {
		case "":
		case "204": // the end of the batch
			return p, nil
		case "404": // the peer has no record before d
			return nil, nil
		default:
			return nil, fmt.Errorf("direct get: %s %s", status, m.Header.Get(descrHdr))
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			continue
		}
		if ev, _, err := monitor.DecodeEvent(m.Data); err == nil {
			p = append(p, record{seq, ev})
		}
	}
}
