// Package sectest holds the security integration tests of hbmesh: the
// authorization templates in deploy/auth are loaded, as they are, into a
// real embedded nats-server, and real nodes and monitors are run against
// them with their own credentials, over plain TCP and over mutual TLS.
// TestFleetAuth runs the decentralized-auth steps of docs/SECURITY.md, as
// the document writes them, with the real nats CLI, and runs nodes,
// monitors and ops with the credentials they make.
//
// The package's only non-test code is [NewPKI], a throwaway certificate
// authority for TLS tests. The credentials in testdata/ are test-only: see
// testdata/README.md.
package sectest
