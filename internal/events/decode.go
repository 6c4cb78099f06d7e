package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// ErrBadEvent is wrapped by every error of [DecodeEvent].
var ErrBadEvent = errors.New("events: bad event")

// eventJSON is the object [monitor.Event.AppendJSON] writes.
type eventJSON struct {
	Time       time.Time     `json:"time"`
	ID         string        `json:"id"`
	Host       string        `json:"host"`
	State      monitor.State `json:"state"`
	Prev       monitor.State `json:"prev"`
	Reason     string        `json:"reason"`
	Boot       string        `json:"boot"`
	Seq        uint64        `json:"seq"`
	IntervalMS int64         `json:"interval_ms"`
	Restart    bool          `json:"restart"`
	PrevBoot   string        `json:"prev_boot"`
	Conflict   bool          `json:"conflict"`
	Repeat     int           `json:"repeat"`
	Monitor    string        `json:"monitor"`
}

// DecodeEvent parses an event as monitors publish it on
// <prefix>.events.<state>.<id>: the JSON of [monitor.Event.AppendJSON]
// with the reporting monitor's id. It returns the event and that id (""
// when absent). Anything else, including an event without a valid id, a
// time or a known state, is an error wrapping [ErrBadEvent].
func DecodeEvent(data []byte) (monitor.Event, string, error) {
	var j eventJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return monitor.Event{}, "", fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	switch {
	case wire.ValidateID(j.ID) != nil:
		return monitor.Event{}, "", fmt.Errorf("%w: id: %w", ErrBadEvent, wire.ValidateID(j.ID))
	case j.State == monitor.StateUnknown:
		return monitor.Event{}, "", fmt.Errorf("%w: no state", ErrBadEvent)
	case j.Time.IsZero():
		return monitor.Event{}, "", fmt.Errorf("%w: no time", ErrBadEvent)
	case j.IntervalMS < 0 || j.IntervalMS > math.MaxInt64/int64(time.Millisecond) || j.Repeat < 0:
		return monitor.Event{}, "", fmt.Errorf("%w: interval_ms or repeat out of range", ErrBadEvent)
	case j.Monitor != "" && wire.ValidateID(j.Monitor) != nil:
		return monitor.Event{}, "", fmt.Errorf("%w: monitor: %w", ErrBadEvent, wire.ValidateID(j.Monitor))
	}
	return monitor.Event{
		Time: j.Time, ID: j.ID, Host: j.Host, State: j.State, Prev: j.Prev,
		Reason: monitor.Reason(j.Reason), Boot: j.Boot, PrevBoot: j.PrevBoot, Seq: j.Seq,
		Interval: time.Duration(j.IntervalMS) * time.Millisecond,
		Restart:  j.Restart, Conflict: j.Conflict, Repeat: j.Repeat,
	}, j.Monitor, nil
}
