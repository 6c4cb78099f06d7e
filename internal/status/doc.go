// Package status is `hbmesh status`: it asks every monitor of a mesh what
// it sees and shows where they agree and where they do not.
//
// [Gather] publishes one request to each endpoint of the hbmesh-monitor
// micro service (package internal/discovery), which every monitor answers
// without a queue group, and reads the replies for as long as [Gather]
// says. A monitor is its monitor id and micro instance id: monitors that
// share a monitor id are a misconfiguration, which the report warns
// about, and each is shown as its own ([Monitor.Column], id@instance).
//
// Anyone allowed to answer on the control subjects can answer
// (docs/SECURITY.md). Replies past the bounds ([MaxMonitors],
// [MaxPeerStates]), or that no monitor sends, are counted in
// [Report.Ignored] and not read; an empty 503 reply, the server's "no
// responders", is believed only before any reply. So replies cannot
// exhaust memory, outlast the wait, or end it early.
//
// The [Report] has a row per peer with the state each monitor reports. It
// is a disagreement when they differ, or when a monitor whose reply was
// not truncated does not know ("missing") a peer another says is alive or
// suspect; not when all the others call it left or dead, since a monitor
// started later never saw it, or forgot it after its retention.
// [Render] prints it as a table, escaping and cutting every field from a
// reply, and [RenderJSON] as JSON. [Run] is the whole command, once or,
// with [Options].Watch, redrawn every interval.
package status
