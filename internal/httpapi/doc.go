// Package httpapi is the monitor's read-only HTTP surface: Prometheus
// metrics, health probes, a JSON API, a Server-Sent Events stream of
// transitions, and a live dashboard.
//
// A [Server] reads everything from a [Source] (a *monitor.Monitor) at
// request time, so serving costs the monitor nothing between requests.
// Transitions reach it through [Server.Publish], meant to be wired to
// monitor.Config.OnEvent; Publish never blocks.
//
// [Metrics] is the /metrics, /livez and /readyz part alone, for any
// process with a Prometheus collector and a readiness check: the Server
// serves its own through one, and hbmesh notify runs one by itself.
//
// # Endpoints
//
// Only GET and HEAD are accepted; any other method gets 405 with an Allow
// header. No endpoint changes state. An /api/peers parameter that is
// unknown or malformed (?states=, ?limit=-1) is a 400 with {"error": ...},
// never a silently unfiltered list.
//
//	/                 the dashboard (ui/index.html, /app.js, /app.css; embedded, gzipped
//	                  once at start, with an ETag so a reload revalidates to a 304)
//	/metrics          Prometheus exposition from a private registry
//	/livez            200 "ok" while the process serves
//	/readyz           200 "ready" when Source.Ready() is nil, else 503 with the reason
//	/api/peers        [PeerList], worst state first, then natural id order (web-2 before
//	                  web-10); ?state=dead,suspect and ?q=substr filter,
//	                  ?limit=N keeps the first N (PeerList.Matched still counts them all)
//	/api/peers/{id}   one [monitor.PeerJSON], or 404 with {"error": ...}
//	/api/status       [monitor.StatusJSON]: readiness, connection, peers per state, counters
//	/api/events       Server-Sent Events, see below; ?limit=N bounds the snapshot
//
// # Dashboard
//
// Up to 1,000 peers the page loads the whole of /api/peers every second
// and filters it itself. Above that it asks for only the first 500 rows
// matching its filter (/api/peers?limit=500&state=...&q=...) every 5 s and
// when the filter changes, takes its counts from /api/status, and says
// "showing 500 of M — filter to narrow" with M from [PeerList.Matched]. Its
// event stream asks for a snapshot of at most 1,000 peers and uses it only
// when it is the whole fleet.
//
// # Compression
//
// JSON bodies of 256 bytes or more (any list of more than a peer or so,
// /api/status) are sent gzipped, at gzip.BestSpeed, to a client whose
// Accept-Encoding allows gzip; every JSON response carries Vary:
// Accept-Encoding. Smaller bodies, such as errors, go plain. The event stream is never compressed:
// each event must reach the client when it is flushed, and a gzip stream
// would hold it back or need a flush of its own per event. /metrics is
// compressed by promhttp itself.
//
// # Event stream
//
// A new client gets "event: snapshot" (a [PeerList], whose id is the
// sequence number it is current to; with ?limit=N only its first N peers,
// as /api/peers?limit=N), then "event: transition" for every
// transition, with "id: <sequence>" and the JSON of monitor.Event.AppendJSON,
// and "event: status" (the /api/status body) every
// Config.StatusInterval. A client that reconnects with Last-Event-ID (or
// ?lastEventId=) whose id is still in the resume buffer (Config.EventBuffer)
// gets exactly the transitions it missed and no snapshot; an older or
// unknown id gets a fresh snapshot. Sequence numbers start at the server's
// start time in microseconds, so an id from an earlier process is never
// mistaken for a recent one. A client whose queue fills is disconnected
// rather than waited for; browsers reconnect and resume by themselves.
//
// # Security
//
// Every response carries a Content-Security-Policy of default-src 'self'
// (the dashboard has no inline script or style), X-Content-Type-Options
// nosniff, Referrer-Policy no-referrer and X-Frame-Options DENY; API
// responses are Cache-Control no-store. The dashboard renders peer data
// (ids, hosts, labels) only through textContent, never as HTML.
//
// # Lifecycle
//
// [New] does no I/O. [Server.Serve] runs an http.Server with read, write,
// idle and header limits until its context is done, then ends every event
// stream, shuts down gracefully and returns after every handler has
// returned. A caller that mounts [Server.Handler] in its own server owns
// that lifecycle; event streams then end when their clients go away.
package httpapi
