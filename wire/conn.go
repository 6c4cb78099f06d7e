package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A node's NATS connection says in its name which node it is and how soon
// it reconnects. The server copies the name into the DISCONNECT advisory
// it publishes when the connection ends, and that is how a monitor maps
// an advisory to a peer and knows how long to wait before it checks.
// Beats never depend on the name: a node whose connection is named
// otherwise beats and is judged as before, on the timeout path only.
//
// The format, with the default prefix, is
//
//	hbmesh node web-1 prefix=hb reconnect=350ms
//
// that is "hbmesh node ", the id, then space-separated key=value fields:
// prefix (a subject prefix, see [ValidatePrefix]) and reconnect (whole
// milliseconds followed by "ms"). Each field appears once; fields with
// other keys are skipped, so the format can grow.
const nodeConnPrefix = "hbmesh node "

// MaxReconnectWindow is the longest reconnect window a node's connection
// name may announce.
const MaxReconnectWindow = time.Hour

// ErrNotNodeConn is returned by [ParseNodeConn] for a name that is not a
// node's at all, such as a monitor's.
var ErrNotNodeConn = errors.New("not a node connection name")

// ErrBadNodeConn is wrapped by the errors [ParseNodeConn] returns for a
// name that starts like a node's but breaks the format.
var ErrBadNodeConn = errors.New("malformed node connection name")

// NodeConn is what a node's connection name announces.
type NodeConn struct {
	// Prefix is the subject prefix of the node's mesh.
	Prefix string
	// ID is the node's id.
	ID string
	// Reconnect is the node's reconnect window: the longest its
	// connection waits, after losing its server, before it first tries
	// that server again. For nats.go that is ReconnectWait plus the
	// largest jitter (ReconnectJitterTLS on a TLS connection,
	// ReconnectJitter otherwise); attempts to the other servers of a
	// cluster come first and without a wait. It is announced in whole
	// milliseconds, rounded up.
	Reconnect time.Duration
}

// Validate reports the first field that cannot be announced.
func (c NodeConn) Validate() error {
	if err := ValidatePrefix(c.Prefix); err != nil {
		return fmt.Errorf("node connection name: Prefix: %w", err)
	}
	if err := ValidateID(c.ID); err != nil {
		return fmt.Errorf("node connection name: ID: %w", err)
	}
	if c.Reconnect < 0 || c.Reconnect > MaxReconnectWindow {
		return fmt.Errorf("node connection name: Reconnect %v outside [0, %v]", c.Reconnect, MaxReconnectWindow)
	}
	return nil
}

// Name returns the connection name that announces c, or the error of
// [NodeConn.Validate].
func (c NodeConn) Name() (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	ms := (c.Reconnect + time.Millisecond - 1) / time.Millisecond
	return nodeConnPrefix + c.ID + " prefix=" + c.Prefix + " reconnect=" + strconv.FormatInt(int64(ms), 10) + "ms", nil
}

// ParseNodeConn parses a node's connection name. Any other name, such as
// a monitor's, yields [ErrNotNodeConn]; a name that starts like a node's
// but breaks the format yields an error wrapping [ErrBadNodeConn] that
// says how.
func ParseNodeConn(name string) (NodeConn, error) {
	rest, ok := strings.CutPrefix(name, nodeConnPrefix)
	if !ok {
		return NodeConn{}, ErrNotNodeConn
	}
	fields := strings.Split(rest, " ")
	var c NodeConn
	c.ID = fields[0]
	if r := idProblem(c.ID); r != "" {
		return NodeConn{}, fmt.Errorf("%w %q: id %q: %s", ErrBadNodeConn, name, c.ID, r)
	}
	var havePrefix, haveReconnect bool
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		if !ok || key == "" {
			return NodeConn{}, fmt.Errorf("%w %q: field %q is not key=value", ErrBadNodeConn, name, f)
		}
		switch key {
		case "prefix":
			if havePrefix {
				return NodeConn{}, fmt.Errorf("%w %q: prefix given twice", ErrBadNodeConn, name)
			}
			if err := ValidatePrefix(val); err != nil {
				return NodeConn{}, fmt.Errorf("%w %q: %w", ErrBadNodeConn, name, err)
			}
			c.Prefix, havePrefix = val, true
		case "reconnect":
			if haveReconnect {
				return NodeConn{}, fmt.Errorf("%w %q: reconnect given twice", ErrBadNodeConn, name)
			}
			d, ok := parseMillis(val)
			if !ok {
				return NodeConn{}, fmt.Errorf("%w %q: reconnect %q is not whole milliseconds within [0ms, %dms]", ErrBadNodeConn, name, val, MaxReconnectWindow.Milliseconds())
			}
			c.Reconnect, haveReconnect = d, true
		}
	}
	switch {
	case !havePrefix:
		return NodeConn{}, fmt.Errorf("%w %q: no prefix", ErrBadNodeConn, name)
	case !haveReconnect:
		return NodeConn{}, fmt.Errorf("%w %q: no reconnect", ErrBadNodeConn, name)
	}
	return c, nil
}

// parseMillis parses "<digits>ms" within [0, MaxReconnectWindow].
func parseMillis(s string) (time.Duration, bool) {
	digits, ok := strings.CutSuffix(s, "ms")
	if !ok || digits == "" || len(digits) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > MaxReconnectWindow.Milliseconds() || n > math.MaxInt64/int64(time.Millisecond) {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// MonitorCheckConnName is the name of the short-lived connection a
// monitor opens and closes to see whether its account receives DISCONNECT
// advisories (see [DisconnectAdvisories]); nonce makes each check's name
// its own.
func MonitorCheckConnName(monitorID, nonce string) string {
	return "hbmesh monitor-check " + monitorID + " " + nonce
}
