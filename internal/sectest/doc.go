// Package sectest holds the security integration tests of hbmesh: the
// authorization templates in deploy/auth are loaded, as they are, into a
// real embedded nats-server, and real nodes and monitors are run against
// them with their own credentials, over plain TCP and over mutual TLS.
//
// The package's only non-test code is [NewPKI], a throwaway certificate
// authority for TLS tests. The credentials in testdata/ are test-only: see
// testdata/README.md.
package sectest
