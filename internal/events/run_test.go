package events_test

import (
	"context"
	"errors"
	"testing"

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
