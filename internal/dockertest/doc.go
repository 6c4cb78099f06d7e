// Package dockertest is the end-to-end test of the Docker demo cluster
// (docker-compose.yml at the repository root): three hbmesh servers, five
// nodes and two monitors in containers built FROM scratch, driven with
// docker kill, pause, network disconnect and stop, and judged through
// both monitors' JSON APIs.
//
// The test has the build tag docker and needs the image:
//
//	make e2e-docker    # builds hbmesh:dev, then runs the test
//
// Without a reachable Docker engine it prints one line,
// "SKIP: e2e-docker: no Docker engine reachable", and succeeds. It runs
// the cluster under its own compose project (hbmesh-e2e) on free loopback
// ports, so a demo cluster from `make cluster-up` is left alone, and it
// removes its containers, network and volumes when it ends, pass or fail.
// $HBMESH_IMAGE picks another image; $HBMESH_E2E_KEEP=1 keeps the cluster
// for inspection (remove it with the printed command). docs/DEMO.md
// describes the cluster and each step of the test.
package dockertest
