package pause_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/pause"
)

func TestFor(t *testing.T) {
	if err := pause.For(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a whole pause: %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := pause.For(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled pause: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("a cancelled pause took %v", d)
	}
}
