// Package faults holds the hbmesh fault-injection suite: an end-to-end
// test that builds the hbmesh binary, runs real `hbmesh server`, `hbmesh
// node` and `hbmesh monitor` processes, injects faults (SIGKILL, SIGSTOP,
// network partitions through [github.com/hbmesh/hbmesh/internal/faultproxy],
// server restarts and cluster failover) and checks the monitor's verdicts:
// every fault that should be a death is reported dead within a bound, and
// no live node is ever reported dead.
//
// The suite lives behind the build tag "faults", so `go test ./...` skips
// it. Run it with
//
//	go test -tags faults -run TestFaultSuite ./internal/faults -trials 2
//
// and see docs/RELIABILITY.md, section "Fault-injection suite", for the
// scenarios, the flags and the latest results.
package faults
