package main

import (
	"runtime"
	"runtime/debug"
)

// tuneNodeProcess fits the hbmesh process to a node, which beats once an
// interval and runs no server; main calls it, first thing, for `hbmesh
// node` only (never in-process from tests: it changes the whole process).
// docs/PERFORMANCE.md ("Node") has what each part saves.
//
//   - One P (GOMAXPROCS 1), unless $GOMAXPROCS says otherwise: a beat is
//     one goroutine's work, and with more Ps each beat wakes more threads.
//   - nats-server's CPU sampler stopped: see stopServerSampler (Linux).
//
// runNode also calls releaseStartupMemory once the node is connected, in
// tests too: it only forces a collection and unmaps clean pages.
func tuneNodeProcess(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	stopServerSampler()
}

// releaseStartupMemory gives back what starting the node used and beating
// does not: the heap that parsing the command line and connecting left
// free (debug.FreeOSMemory: a collection, then the free pages returned at
// once rather than over minutes), and, on Linux, the pages of the binary
// that start-up touched (releaseStartupPages).
func releaseStartupMemory() {
	debug.FreeOSMemory()
	releaseStartupPages()
}
