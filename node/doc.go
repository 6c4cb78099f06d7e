// Package node is the publishing half of hbmesh: it makes one process
// visible to the mesh. A [Node] publishes a heartbeat ("beat") on a fixed
// period, answers liveness probes, and says goodbye when it stops.
//
// # Usage
//
// The caller owns the NATS connection; a Node never dials or closes it.
//
//	cfg := node.DefaultConfig()
//	cfg.Labels = map[string]string{"role": "web"}
//	n, err := node.New(nc, cfg) // validates; no network I/O
//	if err != nil { ... }
//	err = n.Run(ctx)            // blocks until ctx is done
//
// # What goes on the wire
//
// All subjects and payloads come from package [wire]. With the default
// prefix "hb" and id web-1:
//
//	hb.web-1        a beat, published every Config.Interval ± Config.Jitter
//	hb.web-1.probe  request-reply: the reply is a beat describing the
//	                node now (seq of the latest beat, ts = now, alive)
//
// Beats carry a seq that starts at 1 and increases by one per beat. A beat
// that was not published (withheld by [Config.DropBeat], or skipped while
// disconnected) still uses its seq, so a monitor can count the gap. Each
// New draws a fresh random [Node.Boot], so a monitor can tell a restarted
// process (new boot, seq back at 1) from a delayed beat.
//
// # Lifecycle
//
// [Node.Run] subscribes to the probe subject, publishes the first beat at
// once and then one beat per interval. When ctx is done it stops answering
// probes, publishes a final beat with status "leaving", flushes for up to
// two seconds and returns nil. It returns [ErrConnClosed] if the connection
// is closed while it runs, and [ErrRunTwice] if it is called a second time.
// Run starts no goroutines of its own: the beat
// loop runs in the caller's goroutine and probes are answered on the
// subscription goroutine of nats.go, which Run stops before returning.
//
// # Reconnects
//
// While the connection is not CONNECTED, beats are skipped rather than
// published: nats.go would otherwise keep them in its reconnect buffer and
// replay them all at once after reconnecting, and a monitor would read a
// burst of stale beats as fresh evidence of life. When the connection comes
// back the node publishes one fresh beat immediately, or as soon as a
// tenth of its interval has passed since its last one
// ([wire.MinBeatGap]: monitors reject closer beats as a flood), and
// restarts its period from there. [Node.Stats] counts published, dropped, skipped and
// failed beats. Publish errors are logged and counted, never fatal.
//
// # The crash fast path
//
// When a node's process dies, its server sees the TCP connection close and
// publishes a DISCONNECT advisory carrying the connection's name. A
// monitor that reads advisories checks on the node at once instead of
// waiting DeadAfter intervals, if the name announces the node and its
// reconnect window (see [wire.NodeConn]): the monitor waits that long, so
// that a live node whose connection merely dropped is back first. Name
// the connection when you dial it, from the same settings:
//
//	opts := []nats.Option{
//		nats.ReconnectWait(250 * time.Millisecond),
//		nats.ReconnectJitter(100*time.Millisecond, 500*time.Millisecond),
//		nats.MaxReconnects(-1),
//	}
//	o := nats.GetDefaultOptions()
//	for _, opt := range opts {
//		_ = opt(&o)
//	}
//	o.Url = url
//	window, _ := node.ReconnectWindow(&o)
//	name, err := wire.NodeConn{Prefix: "hb", ID: "web-1", Reconnect: window}.Name()
//	nc, err := nats.Connect(url, append(opts, nats.Name(name))...)
//
// [New] refuses a connection whose name announces another node, or a
// window shorter than the connection's own reconnect policy allows, or a
// window at all while a CustomReconnectDelayCB or ReconnectToServerCB
// decides the connection's waits (no window can be checked against
// them): each could make a monitor report the node dead while it
// reconnects. A name that is not a node's at all is fine; monitors then
// judge the node by beats and probes alone. Beats never depend on the
// name. hbmesh node names its connection this way.
//
// # Time
//
// Timestamps and the beat ticker come from [Config.Clock], so tests drive
// a node with a [clock.Fake] and never sleep.
package node
