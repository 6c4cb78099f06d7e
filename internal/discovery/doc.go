// Package discovery registers a running monitor as a NATS micro service,
// so that operators and `hbmesh status` can find every monitor of a mesh
// and ask each one what it sees.
//
// # The service
//
// [Register] adds one service instance per monitor, named [ServiceName]
// ("hbmesh-monitor"), to the monitor's own connection. It answers the
// standard micro discovery verbs, so `nats micro ls`, `nats micro info
// hbmesh-monitor` and `nats micro stats hbmesh-monitor` list every monitor
// with its id in the service metadata (monitor_id, prefix, hbmesh_version,
// and host and pid when Config sets them).
// Both endpoint replies carry the service's instance id as "instance",
// and status replies the host and pid, so a client can tell apart, and
// find, monitors that were given the same id. A client that cannot trust
// whoever answers checks a reply with its Validate method.
//
// # Endpoints
//
// Two endpoints live on the control subjects of [wire.Subjects.Control]:
//
//	status  <prefix>.monitor.v1.status  one [StatusResponse]
//	peers   <prefix>.monitor.v1.peers   one [PeersResponse]
//
// Both are registered without a queue group. A micro service normally
// load-balances a request to one instance; here every monitor must answer,
// because the point of asking is to compare what each of them sees. A
// client therefore publishes one request and collects replies until a
// quiet period passes (see package internal/status), rather than using
// nats.Conn.Request, which returns the first reply only.
//
// # Large fleets
//
// A reply must fit in one NATS message: the server's max_payload, 1MB by
// default. One peer ([monitor.PeerJSON]) costs roughly 400 bytes of JSON,
// so a monitor with more than about 2,500 peers cannot send them all in
// one reply. The peers
// endpoint therefore accepts an optional JSON request body,
//
//	{"state": "dead", "limit": 100}
//
// that keeps only peers in one state and at most limit of them. Peers are
// always sorted worst first (dead, suspect, alive, left), then by id, so
// when a reply would still exceed the connection's max payload it is cut
// at the end, keeping the peers an operator most needs to see, and it
// carries "truncated": true and the untruncated count in "total". An empty
// body means no filter. A body that does not parse gets a micro error
// reply with code 400.
package discovery
