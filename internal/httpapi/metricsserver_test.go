package httpapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hbmesh/hbmesh/internal/httpapi"
)

// TestMetricsAlone: a Metrics of its own serves its collector's series
// next to the Go and process ones, and /readyz follows its Ready.
func TestMetricsAlone(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hbmesh_test_things_total", Help: "Things."})
	c.Add(3)
	var notReady atomic.Pointer[error]
	why := errors.New("consumers not bound")
	notReady.Store(&why)
	m, err := httpapi.NewMetrics(httpapi.MetricsConfig{Collector: c, Ready: func() error {
		if p := notReady.Load(); p != nil {
			return *p
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable || body != "consumers not bound\n" {
		t.Errorf("/readyz not ready: %d %q", resp.StatusCode, body)
	}
	notReady.Store(nil)
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz ready: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, srv.URL+"/livez"); resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez: %d %q", resp.StatusCode, body)
	}
	if got := scrape(t, srv.URL, "hbmesh_test_things_total"); len(got) != 1 || got[0] != "hbmesh_test_things_total 3" {
		t.Errorf("scrape: %q", got)
	}
	if got := scrape(t, srv.URL, "go_goroutines"); len(got) != 1 {
		t.Errorf("no Go collector: %q", got)
	}
	if resp, body := get(t, srv.URL+"/api/peers"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/api/peers: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/metrics", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
}

func TestMetricsConfigInvalid(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "X."})
	ready := func() error { return nil }
	for _, tc := range []struct {
		name string
		cfg  httpapi.MetricsConfig
		want string
	}{
		{"no collector", httpapi.MetricsConfig{Ready: ready}, "Collector"},
		{"no readiness", httpapi.MetricsConfig{Collector: c}, "Ready"},
		{"read timeout", httpapi.MetricsConfig{Collector: c, Ready: ready, ReadTimeout: 1}, "ReadTimeout"},
		{"write timeout", httpapi.MetricsConfig{Collector: c, Ready: ready, WriteTimeout: 11 * time.Minute}, "WriteTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpapi.NewMetrics(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewMetrics: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
