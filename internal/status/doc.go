// Package status is `hbmesh status`: it asks every monitor of a mesh what
// it sees and shows where they agree and where they do not.
//
// # Gathering
//
// Every monitor registers the hbmesh-monitor micro service (package
// internal/discovery) with endpoints that answer without a queue group, so
// one request reaches all of them. [Gather] publishes one request to
// <prefix>.monitor.v1.peers and one to <prefix>.monitor.v1.status, both
// with replies to one inbox, and collects the replies until the wait
// passes (default 1s) or, once every monitor that has spoken has answered
// both, until a short quiet period passes. If no monitor answers, Gather
// fails with [ErrNoMonitors]; with no subscriber at all the server says
// so at once ("no responders"), and Gather does not wait and says that no
// monitor is subscribed, which usually means a wrong prefix. Without a
// NATS connection Gather does not ask: it says it is not connected.
//
// Anyone allowed to answer on the control subjects can answer Gather
// (docs/SECURITY.md). A reply that holds what no monitor sends, such as
// an id that is not a valid id, becomes an error row; replies under more
// than [MaxMonitors] ids or past [MaxPeerStates], or dropped by NATS, are
// counted in [Report.Ignored]; and an empty 503 reply, the server's "no
// responders", is believed only before any reply has come. So replies
// cannot exhaust memory, outlast the wait, or end the gathering early.
//
// # Merging
//
// The [Report] has one row per monitor and one per peer. A peer row holds
// the state each monitor reports; it is marked Disagree when they differ,
// or when a monitor that sent its whole table does not know ("missing") a
// peer that another monitor says is alive or suspect. A monitor missing a
// peer that all the others call left or dead is no disagreement: it
// started after the peer went, or forgot it after its retention. A
// monitor whose reply was truncated (see the discovery package) cannot
// prove a peer missing, so its silence is not counted.
//
// Monitors that share an id are told apart by their micro service
// instance ids. They still get one row and one column, filled from the
// replies of one instance: of those that answered both requests, the
// one with the lowest instance id ([Monitor.Instance]). Not the first to
// answer: the same replies make the same report, and the same table,
// whatever order they come in, so `hbmesh watch` does not flip between
// instances from one round to the next. The others are listed in
// [Monitor.InstanceIDs] and in a warning. Their replies are read all the
// same, into [Monitor.Others] and, where they say something else about a
// peer than the column does, [Peer.SharedStates], and they count in the
// peer's verdict and for --fail-on ([Report.Find]) as the column does: a
// check cannot pass on the word of the monitor in the column while
// another under that id sees a peer dead. Replies that instance ids
// cannot tell apart, from monitors too old to send one or repeating one,
// are kept apart too: each status reply is paired with one peers reply,
// in the order of their content. Past 16 monitors under one id, further
// replies are counted in [Report.Ignored].
//
// # Showing
//
// [Render] prints an aligned table, worst state first, with every field
// from a reply escaped if it is not printable and cut if it is long;
// [RenderJSON] prints one JSON document. [Watch] redraws either every interval. [Run] is the
// whole command: flags in, output out, for cmd/hbmesh to call.
package status
