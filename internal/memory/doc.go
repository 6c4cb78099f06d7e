// Package memory gives a monitor restart memory: the peers it knew, so a
// node that died while the monitor was down is still reported dead.
//
// A [Store] loads and saves snapshots of [monitor.PeerInfo]. A [Saver]
// saves the monitor's table every Interval and once more on shutdown; at
// the next start, the loaded peers go into [monitor.Config.Restore], where
// each restored peer gets one full dead-timeout of grace to beat again
// before it is convicted.
//
// # Stores
//
//   - [FileStore] writes one JSON file atomically (temp file, fsync,
//     rename, fsync of the directory). It suits a single monitor with a
//     local disk.
//   - [KVStore] keeps one JetStream KV entry per peer, keyed
//     <monitor>.<peer>, so monitors share a bucket without sharing memory
//     and a monitor restarted with the same id finds its own entries.
//
// [Open] picks one: an explicit file path wins; otherwise, when the server
// offers JetStream, the KV store; otherwise no store at all (nil, logged),
// and the monitor starts with an empty table.
//
// Each peer is stored as its JSON, [monitor.PeerJSON], as of the save; a
// file holds them in {"format":2,"saved":…,"peers":[…]}, and a KV value
// is one of them. Records of format 1, from monitors before PeerJSON,
// carry interval_ns instead of interval_ms, and are read too
// (docs/ARCHITECTURE.md). A restored peer keeps its identity, state,
// since, last beat and probe RTT; its beat history is not restored: it
// is judged afresh.
package memory
