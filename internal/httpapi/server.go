package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits of the http.Server that [Server.Serve] runs.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds the graceful part of shutdown; connections
	// still busy after it are closed.
	shutdownTimeout = 5 * time.Second
)

// Server is the monitor's read-only HTTP surface. Build it with [New],
// then either run it with [Server.Serve] or mount [Server.Handler]
// yourself. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	id      string // Source.ID(), fixed for the Source's life
	hub     *hub
	reg     *prometheus.Registry
	handler http.Handler
	metrics http.Handler // /metrics, /livez and /readyz alone
	pools   pools        // encode buffers and gzip writers for JSON bodies

	// inflight and metricsInflight track the running handlers of Handler
	// and MetricsHandler, so that Serve and ServeMetrics can each wait for
	// their own, including any still running after http.Server.Close.
	inflight, metricsInflight sync.WaitGroup
}

// New checks cfg, filling zero fields with their defaults, and returns a
// Server. It does no I/O.
func New(cfg Config) (*Server, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, id: cfg.Source.ID()}
	s.hub = newHub(cfg.EventBuffer, uint64(max(0, cfg.Now().UnixMicro())))
	s.reg = newRegistry(s)
	s.handler = s.routes()
	s.metrics = s.metricsRoutes()
	return s, nil
}

// Handler returns the handler serving every endpoint. Only GET and HEAD
// are accepted; every other method gets 405.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler returns the handler serving only /metrics, /livez and
// /readyz: what Prometheus and a health checker need, without the
// dashboard and the API, which reveal the fleet. Only GET and HEAD are
// accepted.
func (s *Server) MetricsHandler() http.Handler { return s.metrics }

// probeRoutes adds /metrics, /livez and /readyz to mux.
func (s *Server) probeRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.cfg.Logger},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /livez", s.handleLivez)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
}

func (s *Server) metricsRoutes() http.Handler {
	mux := http.NewServeMux()
	s.probeRoutes(mux)
	return s.middleware(mux, &s.metricsInflight)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.probeRoutes(mux)
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

// csp allows only this origin: the UI's script and style are files, not
// inline, so no 'unsafe-inline' is needed.
const csp = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) middleware(next http.Handler, inflight *sync.WaitGroup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if !hostAllowed(r) {
			h.Set("Content-Type", "application/json; charset=utf-8")
			s.writeJSON(w, r, http.StatusMisdirectedRequest, errorJSON{"Host " + strconv.Quote(r.Host) + " refused: a server on a loopback address answers only to localhost or an IP address"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			h.Set("Content-Type", "application/json; charset=utf-8")
			s.writeJSON(w, r, http.StatusMethodNotAllowed, errorJSON{"method " + r.Method + " not allowed; this API is read-only"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed guards a server on a loopback address against DNS
// rebinding: a web page the operator visits could point its own host name
// at 127.0.0.1 and read the API from the browser. Such a request carries
// the attacker's host name, so on loopback only "localhost" and IP
// literals are accepted. A server on any other address was exposed on
// purpose, under names this code cannot know, and is not checked.
func hostAllowed(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return true
	}
	ta, ok := local.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
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
	return s.serve(ctx, ln, s.metrics, &s.metricsInflight, "metrics server", func() {})
}

// serve runs h on ln, named name in logs, until ctx is done. Its handlers
// are counted in inflight; endStreams ends the long-lived ones before the
// graceful shutdown, which does not interrupt running handlers.
func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler, inflight *sync.WaitGroup, name string, endStreams func()) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.cfg.Logger.Info(name+" listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	var err error
	select {
	case err = <-errc:
		// The listener failed on its own.
		endStreams()
		_ = hs.Close()
	case <-ctx.Done():
		endStreams()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		if serr := hs.Shutdown(sctx); serr != nil {
			s.cfg.Logger.Warn("graceful shutdown incomplete; closing connections", "err", serr)
			_ = hs.Close()
		}
		cancel()
		err = <-errc
	}
	inflight.Wait()
	s.cfg.Logger.Info(name + " stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpapi: serve: %w", err)
}

// promLogger adapts slog to promhttp's error logger.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("metrics", "err", fmt.Sprint(v...)) }
