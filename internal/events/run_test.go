package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestRunTwice: a sink's second Run returns ErrRunTwice. Both calls get a
// cancelled ctx, so the first returns at once and a sink that ran twice
// would not hang the test.
func TestRunTwice(t *testing.T) {
	srv := natstest.Start(t)
	for _, tc := range []struct {
		name string
		sink func(t *testing.T) func(context.Context) error
	}{
		{"webhook", func(t *testing.T) func(context.Context) error {
			return newWebhook(t, "http://127.0.0.1:9/", nil).Run
		}},
		{"exec", func(t *testing.T) func(context.Context) error {
			return newExec(t, events.DefaultExecConfig("true")).Run
		}},
		{"nats", func(t *testing.T) func(context.Context) error {
			return newPublisher(t, natstest.ConnectServer(t, srv), "mon-a", "").Run
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runFn := tc.sink(t)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := runFn(ctx); err != nil {
				t.Fatalf("first Run = %v", err)
			}
			if err := runFn(ctx); !errors.Is(err, events.ErrRunTwice) {
				t.Errorf("second Run = %v, want ErrRunTwice", err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, 100 * time.Millisecond}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {1000, time.Second}} {
		if got := events.Backoff(100*time.Millisecond, time.Second, tc.n); got != tc.want {
			t.Errorf("Backoff(100ms, 1s, %d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
