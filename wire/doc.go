// Package wire is the hbmesh protocol: the one place that knows subject
// names, the beat and probe payloads, and how to encode and decode them.
//
// # Subjects
//
// With the default prefix "hb" the subject families are:
//
//	hb.<id>                  a beat from node <id>           (matched by hb.*)
//	hb.<id>.probe            request-reply liveness probe    (3 tokens)
//	hb.events.<state>.<id>   a monitor's transition event    (4 tokens)
//	hb.monitor.v1.<name>     monitor control endpoints       (4 tokens)
//
// An id is exactly one subject token (see [ValidateID]), so the families
// can never collide: hb.* has two tokens and so matches beats only, and
// every subject a monitor publishes has four tokens, so it can never be
// read as a beat or a probe of some id. No other package builds a subject
// string by hand; they all go through [Subjects].
//
// # Payloads
//
// A beat is one JSON object (see [Beat]); a probe reply is the same object
// describing the node's latest beat. Both are at most [MaxPayload] bytes.
// [Decoder] parses them strictly and, for the monitor's hot path, without
// allocating: string fields of a [RawBeat] alias the input or a reused
// scratch buffer. Every rejection is a [*DecodeError] carrying a short,
// stable [Reason] suitable as a metric label.
//
// # Connection names and advisories
//
// A node's NATS connection announces the node in its name ([NodeConn]),
// which the server copies into the DISCONNECT advisory it publishes when
// the connection ends ([DisconnectAdvisories], [DecodeDisconnectAdvisory]).
// A monitor reads those advisories as a reason to check a peer at once:
// the crash fast path. Beats never depend on the name.
//
// The protocol is described for humans in docs/PROTOCOL.md.
package wire
