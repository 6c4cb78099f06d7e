package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the http.Server that [Server.Serve] and [Metrics.Serve] run.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds the graceful part of shutdown; connections
	// still busy after it are closed.
	shutdownTimeout = 5 * time.Second
)

// web is what every HTTP surface of this package shares: the security
// headers and checks of middleware, JSON bodies, and the lifecycle of
// serve. [Server] and [Metrics] each have one.
type web struct {
	log                       *slog.Logger
	readTimeout, writeTimeout time.Duration
	pools                     pools // encode buffers and gzip writers for JSON bodies
}

func newWeb(log *slog.Logger, readTimeout, writeTimeout time.Duration) web {
	return web{log: log, readTimeout: readTimeout, writeTimeout: writeTimeout}
}

// csp allows only this origin: the UI's script and style are files, not
// inline, so no 'unsafe-inline' is needed.
const csp = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (wb *web) middleware(next http.Handler, inflight *sync.WaitGroup) http.Handler {
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
			wb.writeJSON(w, r, http.StatusMisdirectedRequest, errorJSON{"Host " + strconv.Quote(r.Host) + " refused: a server on a loopback address answers only to localhost or an IP address"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			h.Set("Content-Type", "application/json; charset=utf-8")
			wb.writeJSON(w, r, http.StatusMethodNotAllowed, errorJSON{"method " + r.Method + " not allowed; this API is read-only"})
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

// writeJSON encodes v whole before sending anything, so that an encoding
// failure is a 500 rather than a cut-off 200, and then sends it gzipped
// when the client accepts gzip and the body is at least gzipMinSize bytes.
func (wb *web) writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	buf := wb.pools.getBuf()
	defer wb.pools.putBuf(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		wb.log.Error("response not encoded", "path", r.URL.Path, "err", err)
		buf.Reset()
		code = http.StatusInternalServerError
		_ = json.NewEncoder(buf).Encode(errorJSON{"response not encoded: " + err.Error()})
	}
	gz := buf.Len() >= gzipMinSize && acceptsGzip(r)
	if gz {
		h.Set("Content-Encoding", "gzip")
	} else {
		h.Set("Content-Length", strconv.Itoa(buf.Len()))
	}
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	var err error
	if gz {
		err = wb.pools.writeGzip(w, buf.Bytes())
	} else {
		_, err = w.Write(buf.Bytes())
	}
	if err != nil {
		wb.log.Debug("response not written", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	}
}

// serve runs h on ln, named name in logs, until ctx is done. Its handlers
// are counted in inflight; endStreams ends the long-lived ones before the
// graceful shutdown, which does not interrupt running handlers.
func (wb *web) serve(ctx context.Context, ln net.Listener, h http.Handler, inflight *sync.WaitGroup, name string, endStreams func()) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       wb.readTimeout,
		WriteTimeout:      wb.writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(wb.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	wb.log.Info(name+" listening", "addr", ln.Addr().String())
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
			wb.log.Warn("graceful shutdown incomplete; closing connections", "err", serr)
			_ = hs.Close()
		}
		cancel()
		err = <-errc
	}
	inflight.Wait()
	wb.log.Info(name + " stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpapi: serve: %w", err)
}

// promLogger adapts slog to promhttp's error logger.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("metrics", "err", fmt.Sprint(v...)) }
