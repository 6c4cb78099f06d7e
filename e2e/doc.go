// Package e2e holds end-to-end tests that build the hbmesh binary and run
// it as separate processes against a standalone nats-server, using the real
// nats CLI as a client. `make test` installs both tools into bin/tools
// (see the Makefile); the tests look there, then in $HBMESH_TOOLS, then on
// PATH and in $(go env GOPATH)/bin.
package e2e
