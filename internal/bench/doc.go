// Package bench holds the whole-system benchmarks behind `hbmesh bench`.
//
// Each benchmark is self-contained: unless given -s URL it starts an
// embedded nats-server on a random loopback port, measures hbmesh against
// a bare NATS baseline in the same run where there is one, and ends by
// writing exactly one JSON object on one line to stdout. Progress goes to
// stderr.
//
// # Benchmarks
//
//	ingest   beats per second through the real monitor vs a bare counting subscriber
//	detect   how late dead verdicts are, with N simulated nodes and K silent kills
//	scale    monitor CPU, heap and RSS at N peers; churn through a bounded table
//	probe    probe round trip through node.Node vs a bare request/reply
//	node     a real `hbmesh node` process's RSS and CPU per beat, from /proc,
//	         with the same binary idle and, given, a Go hello world and a
//	         bare nats.go client as baselines in the same window
//
// Every benchmark accepts Quick (--quick), a small and short configuration meant
// for CI: it checks that the benchmark runs, not how fast.
//
// The figures, the commands that produced them and their analysis are in
// docs/PERFORMANCE.md.
package bench
