package natstest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Eventually polls cond every 2ms until it holds, and fails the test if it
// does not within Timeout. It is for state that offers nothing to wait on,
// such as a monitor's readiness or peer table; prefer a channel or an event
// where there is one.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-timer.C:
			t.Fatalf("natstest: timed out after %v waiting for %s", Timeout, what)
		case <-tick.C:
		}
	}
}

// Run runs fn in a goroutine until the test ends, or until the returned
// stop is called: then it cancels fn's context, waits for it to return and
// fails the test if it returned an error other than nil or one of ok, or
// did not return within Timeout. stop may be called more than once.
func Run(t testing.TB, what string, fn func(context.Context) error, ok ...error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err == nil {
				return
			}
			for _, o := range ok {
				if errors.Is(err, o) {
					return
				}
			}
			t.Errorf("%s: returned %v", what, err)
		case <-time.After(Timeout):
			t.Errorf("%s: did not return within %v of cancel", what, Timeout)
		}
	}
	t.Cleanup(stop)
	return stop
}
