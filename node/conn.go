package node

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/wire"
)

// ReconnectWindow returns the reconnect window of a connection with
// options o, which is what its name must announce (wire.NodeConn.Reconnect)
// for monitors to take the crash fast path for the node: the longest the
// connection waits, after losing its server, before it tries that server
// again. nats.go (v1.55) first tries the other servers it knows, at once,
// and sleeps ReconnectWait plus a random jitter only before trying again
// the server it lost; the jitter is below ReconnectJitterTLS on a TLS
// connection (o.Secure, a TLSConfig, or a tls:// URL) and below
// ReconnectJitter otherwise. ok is false when the window cannot be told:
// a CustomReconnectDelayCB, or a ReconnectToServerCB (which chooses each
// server and the delay before it), decides the waits.
func ReconnectWindow(o *nats.Options) (window time.Duration, ok bool) {
	if o.CustomReconnectDelayCB != nil || o.ReconnectToServerCB != nil {
		return 0, false
	}
	jitter := o.ReconnectJitter
	if o.Secure || o.TLSConfig != nil || tlsURL(o.Url) || tlsURL(o.Servers...) {
		jitter = o.ReconnectJitterTLS
	}
	return max(o.ReconnectWait, 0) + max(jitter, 0), true
}

func tlsURL(urls ...string) bool {
	for _, list := range urls {
		for _, u := range strings.Split(list, ",") {
			if strings.HasPrefix(strings.TrimSpace(u), "tls://") || strings.HasPrefix(strings.TrimSpace(u), "wss://") {
				return true
			}
		}
	}
	return false
}

// checkConnName checks what the connection's name announces against the
// node and the connection's own reconnect policy. It reports whether the
// name announces the node (false for a name that is not a node's at all,
// which is allowed: monitors then judge the node by beats and probes
// alone).
func checkConnName(o *nats.Options, cfg *Config) (bool, error) {
	c, err := wire.ParseNodeConn(o.Name)
	switch {
	case err == wire.ErrNotNodeConn:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("node: connection name: %w", err)
	case c.ID != cfg.ID || c.Prefix != cfg.Prefix:
		return false, fmt.Errorf("node: connection name %q announces node %s under prefix %s, not %s under %s",
			o.Name, c.ID, c.Prefix, cfg.ID, cfg.Prefix)
	}
	if !o.AllowReconnect || o.MaxReconnect == 0 {
		return true, nil // the connection never comes back: its end is the node's
	}
	w, ok := ReconnectWindow(o)
	switch {
	case !ok:
		return false, fmt.Errorf("node: connection name %q announces a reconnect window, but the connection's reconnect delays are its own "+
			"(CustomReconnectDelayCB or ReconnectToServerCB), so the window cannot be checked, and a monitor could report the node dead "+
			"while it reconnects; name the connection otherwise, or reconnect by ReconnectWait and ReconnectJitter", o.Name)
	case c.Reconnect < w:
		return false, fmt.Errorf("node: connection name %q announces a reconnect window of %v, but the connection may wait %v "+
			"(ReconnectWait + jitter) before it reconnects, and a monitor could report the node dead meanwhile; "+
			"announce at least %v (node.ReconnectWindow)", o.Name, c.Reconnect, w, w)
	}
	return true, nil
}
