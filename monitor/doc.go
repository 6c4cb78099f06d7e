// Package monitor watches hbmesh beats and turns silence into verdicts.
//
// A [Monitor] subscribes to <prefix>.* on a *nats.Conn it is given, keeps a
// bounded table of peers, and moves each peer through four states:
//
//	alive ──(SuspectAfter intervals silent)──▶ suspect ──(DeadAfter, probe unanswered)──▶ dead
//	  ▲                                           │
//	  └──────────(beat, or probe answered)────────┘
//	any ──(goodbye beat)──▶ left        any ──(new boot id)──▶ alive, flagged as a restart
//
// Timing follows each peer's announced interval, measured by when its beats
// arrive here and never by the sender's clock. On entering suspect the
// monitor sends exactly one request-reply probe to <prefix>.<id>.probe;
// an answer proves the process alive even if its beats are being lost.
//
// # Trusting the verdicts
//
// The monitor never blames peers for its own trouble. While its NATS
// connection is down, or a PING round trip to its server fails, it
// suspends verdicts; when observation resumes every peer gets a full
// timeout from that moment. When its own sweep loop stalls (GC pause,
// CPU starvation, SIGSTOP, VM pause) it notices the late tick and extends
// every deadline by the stall, in O(1), by keeping deadlines in a virtual
// time that does not advance while the monitor could not look. While more
// than MaxBacklog beats wait in its subscription, verdicts wait too.
//
// # Scale
//
// Deadlines live in one min-heap swept by one goroutine every Resolution;
// there is no timer or goroutine per peer. A beat from a known peer only
// updates the peer's row (no allocation, no heap work): a peer's heap
// entry is re-pushed lazily when it comes due and the peer turns out to
// have been heard from. The table holds at most MaxPeers peers; ids seen
// only once are evicted before established peers, so a flood of one-off
// ids cannot push real peers out.
//
// # Crash fast path
//
// A node's server publishes a DISCONNECT advisory when the node's
// connection ends. Unless [Config.NoFastPath] is set, the monitor takes
// such an advisory ([Config.Advisories]) as a reason to check a live peer
// at once, never as a verdict: it waits out the reconnect window the
// node's connection name announces ([wire.NodeConn]) plus
// [Config.DisconnectMargin] (after a read or write error, which a reset
// the node has yet to see also gives, the peer's interval too), probes
// once, and on NATS' "no responders" reports the peer dead with reason
// [ReasonDisconnected], well before DeadAfter intervals. Anything
// inconclusive leaves the peer to the timeout path, which runs for every
// peer regardless.
// [Monitor.CheckFastPath] tells whether advisories reach the monitor at
// all; docs/RELIABILITY.md says why a check cannot convict a live node.
//
// # Events
//
// Transitions reach library users through [Config.OnEvent], called from a
// single goroutine in the order the transitions happened. Snapshots are
// available at any time from [Monitor.Peers], [Monitor.Peer] and
// [Monitor.Stats], which are safe for concurrent use. [Monitor.TopPeers]
// takes one page of the peer list, worst state first and then by id in
// natural order, with the count of all peers it was chosen from: for a
// dashboard over a large table it holds the monitor's lock (and delays
// beats) for a fraction of what a full snapshot does.
//
// # Detectors
//
// [DetectorFixed] (the default) uses the multipliers SuspectAfter and
// DeadAfter. [DetectorPhi] estimates each peer's inter-arrival time and
// convicts at a configurable phi; see docs/RELIABILITY.md for when to use
// which.
package monitor
