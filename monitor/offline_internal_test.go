package monitor

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/clock"
)

// offline returns a monitor that is never Run, for tests that drive its
// beat path or its logging directly: New does no I/O, so it needs no
// connection.
func offline(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	m, err := New(&nats.Conn{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// offlineClocked is offline with the default config on a fake clock.
func offlineClocked(t *testing.T) (*Monitor, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.Clock = clk
	return offline(t, cfg), clk
}
