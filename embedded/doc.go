// Package embedded runs a nats-server inside the current process.
//
// hbmesh needs a NATS server in three places: tests, which want a real
// server on a random port and never a mock; single-binary deployments,
// where the mesh brings its own server; and small clusters of such
// binaries. This package wraps [server.Server] with the house lifecycle:
// a validated [Config], a [New] that does no I/O, a [Server.Start] that
// reports readiness as an error, and a [Server.Shutdown] that runs once
// and returns only when the server has fully stopped.
//
// # Usage
//
// Build a Config (start from [DefaultConfig], or from the zero value),
// pass it to New, call Start and defer Shutdown. Then connect with
//
//	nc, err := nats.Connect(srv.ClientURL(), srv.ConnectOptions()...)
//
// which works both for a server listening on TCP and for an in-process
// one (Config.DontListen), where ClientURL is empty and ConnectOptions
// carries [nats.InProcessServer]. Use [RandomPort] for Config.Port in
// tests and read the chosen port back from ClientURL.
//
// # Configuration files
//
// Config.ConfigFile names a regular nats-server configuration file, which
// is the way to set up authorization, TLS and accounts. Start reads it
// (New does not touch the file system); any non-zero Config field then
// overrides the file, and Config.Options, if set, gets the final
// [server.Options] for anything else.
//
// # Accounts
//
// A server without accounts puts every client in nats-server's global
// account, which sees no system advisories. Config.MeshAccount sets up an
// account for the mesh, which clients without credentials join, and a
// system account that exports to it its own client DISCONNECT advisories
// and nothing else, so that a monitor learns at once when a node's
// connection ends (its crash fast path). hbmesh server, monitor
// --embedded and demo use it with [DefaultMeshAccount]; with a
// ConfigFile the accounts are the file's (see docs/SECURITY.md).
//
// # Clusters
//
// A non-empty Config.Cluster.Name turns clustering on. Start the first
// server, then give the others its [Server.ClusterURL] in
// Cluster.Routes; the servers learn about each other by gossip and form a
// full mesh. Start does not wait for routes; [Server.WaitRoutes] does.
//
// A clustered server needs a client listener: nats-server advertises
// client URLs to its peers, so DontListen and Cluster cannot be combined
// and Validate refuses it.
//
// # Logging and signals
//
// Server logs go to Config.Logger (discarded by default), notices at
// Info, warnings at Warn, errors at Error and debug/trace at Debug. A
// fatal server error is logged, never exits the process, and makes Start
// fail. The embedded server never installs signal handlers.
package embedded
