package main

import "runtime"

// tuneNodeProcess fits the hbmesh process to a node, which beats once an
// interval and runs no server; main calls it, first thing, for `hbmesh
// node` only (never in-process from tests: it changes the whole process).
// docs/PERFORMANCE.md ("Node") has what each part saves.
//
//   - One P (GOMAXPROCS 1), unless $GOMAXPROCS says otherwise: a beat is
//     one goroutine's work, and with more Ps each beat wakes more threads.
//   - nats-server's CPU sampler stopped: see stopServerSampler (Linux).
//
// runNode also calls releaseStartupPages (Linux) once the node is
// connected, in-process too: it only unmaps clean pages.
func tuneNodeProcess(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	stopServerSampler()
}
