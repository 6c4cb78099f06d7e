//go:build !linux

package main

// stopServerSampler does nothing off Linux, where nats-server's sampler
// reads no /proc file.
func stopServerSampler() {}

// releaseStartupPages does nothing off Linux.
func releaseStartupPages() {}
