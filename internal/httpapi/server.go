package httpapi

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Server is the monitor's read-only HTTP surface. Build it with [New],
// then either run it with [Server.Serve] or mount [Server.Handler]
// yourself. Its methods are safe for concurrent use.
type Server struct {
	web
	cfg     Config
	id      string // Source.ID(), fixed for the Source's life
	hub     *hub
	handler http.Handler
	// metrics serves /metrics, /livez and /readyz, in Handler and alone.
	metrics *Metrics

	// inflight tracks the running handlers of Handler, so that Serve can
	// wait for them, including any still running after http.Server.Close.
	inflight sync.WaitGroup
}

// New checks cfg, filling zero fields with their defaults, and returns a
// Server. It does no I/O.
func New(cfg Config) (*Server, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{web: newWeb(cfg.Logger, cfg.ReadTimeout, cfg.WriteTimeout), cfg: cfg, id: cfg.Source.ID()}
	s.hub = newHub(cfg.EventBuffer, uint64(max(0, cfg.Now().UnixMicro())))
	m, err := NewMetrics(MetricsConfig{
		Collector: newCollector(s), Ready: cfg.Source.Ready,
		ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.handler = s.routes()
	return s, nil
}

// Handler returns the handler serving every endpoint. Only GET and HEAD
// are accepted; every other method gets 405.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler returns the handler serving only /metrics, /livez and
// /readyz: what Prometheus and a health checker need, without the
// dashboard and the API, which reveal the fleet. Only GET and HEAD are
// accepted.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.metrics.routes(mux)
	mux.HandleFunc("GET /api/peers", s.handlePeers)
	mux.HandleFunc("GET /api/peers/{id}", s.handlePeer)
	mux.HandleFunc("GET /api/status", s.handleStatus)
	mux.HandleFunc("GET /api/events", s.handleEvents)
	mux.HandleFunc("GET /api/", s.handleAPINotFound)
	mux.HandleFunc("GET /{$}", s.handleUI("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", s.handleUI("app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app.css", s.handleUI("app.css", "text/css; charset=utf-8"))
	return s.middleware(mux, &s.inflight)
}

// Serve serves on ln until ctx is done, then shuts down: it stops
// accepting, ends every SSE stream, lets other requests finish for up to
// 5s, closes what is left, and returns only after every handler has
// returned. It returns nil after a shutdown caused by ctx, or the error
// that stopped the listener. Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.handler, &s.inflight, "http server", s.hub.close)
}

// ServeMetrics is [Server.Serve] for [Server.MetricsHandler]: it may run
// on a listener of its own, next to Serve or without it.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	return s.metrics.Serve(ctx, ln)
}
