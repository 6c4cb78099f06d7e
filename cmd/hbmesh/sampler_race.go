//go:build linux && race

package main

// stopServerSampler leaves nats-server's sampler running in a
// race-instrumented build: renaming its file is, to the race detector, a
// race with the sampler's next read (harmless there, see sampler_linux.go,
// but reported all the same).
func stopServerSampler() {}
