package events_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hbmesh/hbmesh/internal/events"
)

// TestPosterFollowsNoRedirect: a receiver that redirects does not get a
// post's headers sent on to wherever it points (they carry tokens, and
// net/http forwards every header but Authorization and cookies across
// hosts); the post fails for good, naming the redirect, and is not
// retried.
func TestPosterFollowsNoRedirect(t *testing.T) {
	var leaked atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Token") != "" {
			leaked.Add(1)
		}
	}))
	t.Cleanup(elsewhere.Close)
	for _, code := range []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/hook", code))
		cfg := events.DefaultHTTPConfig()
		cfg.Header = http.Header{"X-Token": {"s3cret"}}
		p, err := events.NewPoster(redirector.URL+"/hook", cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Post(context.Background(), []byte(`{}`))
		redirector.Close()
		if !errors.Is(err, events.ErrRejected) || !strings.Contains(err.Error(), "redirect") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%d: Post = %v, want a rejection naming the redirect", code, err)
		}
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("the redirect target got the token %d times", n)
	}
}
