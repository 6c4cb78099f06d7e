package discovery

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hbmesh/hbmesh/internal/printable"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Validate reports what in a status reply no monitor sends, for a client
// that cannot trust whoever answers (docs/SECURITY.md): a monitor id that
// is not a valid id (monitor.Config.ID), or an instance id that is not a
// NATS nuid, letters and digits. Text fields are not checked: a client
// that shows them escapes them (package internal/printable).
func (r *StatusResponse) Validate() error { return validMonitor(r.Monitor, r.Instance) }

// Validate is [StatusResponse.Validate] for a peers reply, which also
// refuses a peer whose id is not a valid id, or that has no state.
func (r *PeersResponse) Validate() error {
	if err := validMonitor(r.Monitor, r.Instance); err != nil {
		return err
	}
	for i := range r.Peers {
		if err := validID(r.Peers[i].ID); err != nil {
			return fmt.Errorf("peer %d: %w", i, err)
		}
		if r.Peers[i].State == monitor.StateUnknown {
			return fmt.Errorf("peer %d: no state", i)
		}
	}
	return nil
}

func validMonitor(id, instance string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if len(instance) > wire.MaxIDLen || strings.ContainsFunc(instance, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z')
	}) {
		return fmt.Errorf("instance %s: want at most %d letters and digits", printable.Quote(instance, wire.MaxIDLen), wire.MaxIDLen)
	}
	return nil
}

// validID is wire.ValidateID with the id in its error cut short: ids
// from a reply may be as long as the reply.
func validID(id string) error {
	var ie *wire.IDError
	if errors.As(wire.ValidateID(id), &ie) {
		return fmt.Errorf("invalid id %s: %s", printable.Quote(ie.ID, wire.MaxIDLen), ie.Reason)
	}
	return nil
}
