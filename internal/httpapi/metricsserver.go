package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics serves what Prometheus and a health checker need from an hbmesh
// process: /metrics, /livez and /readyz. The monitor's [Server] serves
// them through one; hbmesh notify runs one alone. Build it with
// [NewMetrics]. Its methods are safe for concurrent use.
type Metrics struct {
	web
	ready   func() error
	reg     *prometheus.Registry
	handler http.Handler
	// inflight tracks the running handlers of Handler, so that Serve can
	// wait for them.
	inflight sync.WaitGroup
}

// MetricsConfig configures [Metrics].
type MetricsConfig struct {
	// Collector exports the process's own metrics; the standard Go and
	// process collectors are added next to it. Required.
	Collector prometheus.Collector
	// Ready is what /readyz reports: 200 "ready" while it returns nil,
	// 503 with the error's text otherwise. It is called at every request
	// and must be safe for concurrent use. Required.
	Ready func() error
	// ReadTimeout and WriteTimeout bound reading one request and writing
	// one response in [Metrics.Serve]. Within [10ms, 10m]. Defaults: 10s
	// and 30s, as for [Config].
	ReadTimeout, WriteTimeout time.Duration
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
}

// NewMetrics checks cfg, filling zero fields with their defaults, and
// returns a Metrics. It does no I/O.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	inDur := func(d time.Duration) bool { return d >= 10*time.Millisecond && d <= 10*time.Minute }
	switch {
	case cfg.Collector == nil:
		return nil, invalid.Field("Collector", nil, "is nil")
	case cfg.Ready == nil:
		return nil, invalid.Field("Ready", nil, "is nil")
	case !inDur(cfg.ReadTimeout):
		return nil, invalid.Field("ReadTimeout", cfg.ReadTimeout, "must be within [10ms, 10m]")
	case !inDur(cfg.WriteTimeout):
		return nil, invalid.Field("WriteTimeout", cfg.WriteTimeout, "must be within [10ms, 10m]")
	}
	// A private registry: no package globals are touched, so several can
	// live in one process.
	reg := prometheus.NewRegistry()
	if err := reg.Register(cfg.Collector); err != nil {
		return nil, invalid.Wrap("Collector", nil, err)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{web: newWeb(cfg.Logger, cfg.ReadTimeout, cfg.WriteTimeout), ready: cfg.Ready, reg: reg}
	mux := http.NewServeMux()
	m.routes(mux)
	m.handler = m.middleware(mux, &m.inflight)
	return m, nil
}

// Handler returns the handler serving /metrics, /livez and /readyz. Only
// GET and HEAD are accepted; every other method gets 405.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Serve serves [Metrics.Handler] on ln until ctx is done, then shuts down
// as [Server.Serve] does. It returns nil after a shutdown caused by ctx,
// or the error that stopped the listener. Serve closes ln.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	return m.serve(ctx, ln, m.handler, &m.inflight, "metrics server", func() {})
}

// routes adds /metrics, /livez and /readyz to mux.
func (m *Metrics) routes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{m.log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := m.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
			return
		}
		fmt.Fprintln(w, "ready")
	})
}
