package status

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Anyone allowed to answer on the control subjects can answer Gather, and
// nothing but the NATS permissions of docs/SECURITY.md says a reply comes
// from a monitor. These bounds keep such replies from exhausting memory
// or time; a real mesh is far inside them.
const (
	// MaxMonitors is how many monitor ids one report takes in. Replies
	// under further ids are counted in [Report.Ignored], not read.
	MaxMonitors = 64
	// MaxPeerStates is how many states of peers one report holds: it has
	// a row for every peer any monitor lists, with a state for each
	// monitor that sent its peers (each of those sharing an id too), so
	// distinct peers times monitors. That is 200,000 peers seen by ten
	// monitors, or 1,000,000 by two; the report then takes 100 to 300MB.
	// A peers reply that would pass it is counted in [Report.Ignored],
	// not read.
	MaxPeerStates = 2_000_000
	// maxInstanceIDs is how many monitors sharing one monitor id a report
	// reads: the one its row shows and maxInstanceIDs-1 in
	// Monitor.Others. Replies of further ones are counted in
	// Report.Ignored. It is also how many instance ids of one monitor id
	// are kept in Monitor.InstanceIDs and Where; Monitor.Instances counts
	// them all.
	maxInstanceIDs = 16
)

// checkStatus refuses a status reply no monitor would send. Only what the
// report keeps is checked, against the bounds a monitor keeps itself.
// (Strings need no UTF-8 check: encoding/json replaces invalid bytes.)
func checkStatus(r *discovery.StatusResponse) error {
	if err := checkMonitor(r.Monitor, r.Instance); err != nil {
		return err
	}
	switch {
	case len(r.Host) > wire.MaxHostLen:
		return fmt.Errorf("host %s: longer than %d bytes", quoteCut(r.Host), wire.MaxHostLen)
	case r.PID < 0 || r.PID > math.MaxInt32:
		return fmt.Errorf("pid %d out of range", r.PID)
	case r.Peers < 0:
		return fmt.Errorf("peers %d is negative", r.Peers)
	}
	return nil
}

// checkPeers refuses a peers reply no monitor would send: every peer's id
// is a valid id, listed once, in a known state, and its host, version and
// boot keep to the bounds of the beats they came from.
func checkPeers(r *discovery.PeersResponse) error {
	if err := checkMonitor(r.Monitor, r.Instance); err != nil {
		return err
	}
	if r.Total < 0 {
		return fmt.Errorf("total %d is negative", r.Total)
	}
	seen := make(map[string]struct{}, len(r.Peers))
	for i := range r.Peers {
		p := &r.Peers[i]
		if err := checkPeer(p); err != nil {
			return fmt.Errorf("peer %d: %w", i, err)
		}
		if _, dup := seen[p.ID]; dup {
			return fmt.Errorf("peer %d: id %q listed twice", i, p.ID)
		}
		seen[p.ID] = struct{}{}
	}
	return nil
}

func checkPeer(p *monitor.PeerJSON) error {
	if err := wire.ValidateID(p.ID); err != nil {
		return errors.New(cutError(err))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"host", p.Host, wire.MaxHostLen}, {"version", p.Version, wire.MaxVersionLen}, {"boot", p.Boot, wire.MaxBootLen}} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s %s: longer than %d bytes", f.name, quoteCut(f.v), f.max)
		}
	}
	if p.State == monitor.StateUnknown {
		return errors.New("no state")
	}
	return nil
}

// checkMonitor checks the monitor id and instance id of a reply: a
// monitor's id is a valid id (monitor.Config.ID), and its micro instance
// id a NATS nuid, which is one too.
func checkMonitor(id, instance string) error {
	if id == "" {
		return errors.New(`no "monitor"`)
	}
	if err := wire.ValidateID(id); err != nil {
		return fmt.Errorf("monitor: %s", cutError(err))
	}
	if instance == "" {
		return nil
	}
	if err := wire.ValidateID(instance); err != nil {
		return fmt.Errorf("instance: %s", cutError(err))
	}
	return nil
}

// cutError is the message of a wire.ValidateID error, with the id in it
// cut short: ids from a reply may be as long as the reply.
func cutError(err error) string {
	var ie *wire.IDError
	if errors.As(err, &ie) {
		return fmt.Sprintf("invalid id %s: %s", quoteCut(ie.ID), ie.Reason)
	}
	return err.Error()
}

// quoteCut quotes at most the first 64 bytes of s, for an error message.
func quoteCut(s string) string {
	const n = 64
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:n]) + "…"
}
