package embedded

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded nats-server. Create it with New, then Start it,
// then Shutdown it. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	name string // default server name, chosen by New
	log  *slog.Logger

	// mu guards everything below. Start holds it for its whole duration,
	// so a concurrent Shutdown waits for Start to finish.
	mu      sync.Mutex
	opts    *server.Options // built by New, or by Start when ConfigFile is set
	ns      *server.Server
	tempDir string // store dir created by Start, removed by Shutdown
	info    info   // snapshot of opts taken by Start, see info
	started bool
	stopped bool

	shutdownOnce sync.Once
}

// info is what the accessors need from the options, copied once by Start
// because nats-server keeps and updates the Options it was given.
type info struct {
	dontListen  bool
	tls         bool
	host        string
	clusterHost string
	httpHost    string
	storeDir    string // "" when JetStream is off
}

// New validates cfg and builds the server options. It does no I/O: the
// ConfigFile, if any, is read by Start, and nothing listens until Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:  cfg,
		name: "hbmesh-" + strings.ToLower(rand.Text()[:10]),
		log:  cfg.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.ConfigFile == "" {
		base, err := cfg.baseOptions()
		if err != nil {
			return nil, err
		}
		opts, err := cfg.options(base, s.name)
		if err != nil {
			return nil, err
		}
		s.opts = opts
	}
	return s, nil
}

// Start starts the server and waits until it accepts client connections,
// up to Config.ReadyTimeout. It returns an error if the server could not
// start or was not ready in time; in that case the server has already been
// shut down. For a clustered server, Start does not wait for routes: use
// WaitRoutes. A Server can be started only once.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return errors.New("embedded: start: server was shut down")
	case s.started:
		return errors.New("embedded: start: already started")
	}
	s.started = true

	if s.opts == nil {
		base, err := server.ProcessConfigFile(s.cfg.ConfigFile)
		if err != nil {
			return fmt.Errorf("embedded: load config %q: %w", s.cfg.ConfigFile, err)
		}
		if s.opts, err = s.cfg.options(base, s.name); err != nil {
			return err
		}
	}
	opts := s.opts
	if opts.JetStream && opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "hbmesh-embedded-")
		if err != nil {
			return fmt.Errorf("embedded: create JetStream store dir: %w", err)
		}
		s.tempDir = dir
		opts.StoreDir = dir
	}

	// A store dir the caller named may not exist yet; nats-server creates
	// it before it binds its ports, so a start that fails must take away
	// the empty directories it left.
	var created string
	if opts.JetStream && s.tempDir == "" {
		created = firstMissing(opts.StoreDir)
	}

	ns, err := server.NewServer(opts)
	if err != nil {
		s.removeTempDir()
		return fmt.Errorf("embedded: create server %q: %w", opts.ServerName, err)
	}
	bridge := newSlogBridge(s.log)
	debug := opts.Debug || s.log.Enabled(context.Background(), slog.LevelDebug)
	ns.SetLoggerV2(bridge, debug, opts.Trace, opts.TraceVerbose)
	s.ns = ns
	// NewServer has filled in the defaults (HTTPHost and so on).
	s.info = info{
		dontListen:  opts.DontListen,
		tls:         opts.TLSConfig != nil,
		host:        opts.Host,
		clusterHost: opts.Cluster.Host,
		httpHost:    opts.HTTPHost,
	}
	if opts.JetStream {
		s.info.storeDir = opts.StoreDir
	}

	ns.Start()
	if err := s.waitReady(ns, bridge); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		s.removeTempDir()
		removeEmptyDirs(created)
		return fmt.Errorf("embedded: start server %q: %w", opts.ServerName, err)
	}
	// Debug: nats-server has said "Server is ready", and each command
	// logs its own line with the URLs it will use.
	s.log.Debug("nats-server ready", "server", ns.Name(), "url", s.clientURL())
	return nil
}

// waitReady waits for readiness in short slices so that a fatal startup
// error (a port in use, say) is reported at once rather than after the
// whole ReadyTimeout.
func (s *Server) waitReady(ns *server.Server, b *slogBridge) error {
	timeout := s.cfg.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-b.fatal:
			return startError(b.fatalMsg)
		default:
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("not ready for connections after %s", timeout)
		}
		if ns.ReadyForConnections(min(left, 25*time.Millisecond)) {
			return nil
		}
	}
}

// fatalError is a startup failure nats-server reported only as a log
// line; cause, when it can be told from the line, lets callers match it
// with errors.Is (syscall.EADDRINUSE for a port in use).
type fatalError struct {
	msg   string
	cause error
}

func (e *fatalError) Error() string { return e.msg }
func (e *fatalError) Unwrap() error { return e.cause }

func startError(msg string) error {
	if strings.Contains(msg, "address already in use") {
		return &fatalError{msg: msg, cause: syscall.EADDRINUSE}
	}
	return errors.New(msg)
}

// NATS returns the underlying nats-server, or nil before Start. Use it for
// anything this package does not wrap (Varz, Routez, accounts).
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// ClientURL returns the URL clients connect to, such as
// nats://127.0.0.1:34567, with the actual port when RandomPort was used.
// It is empty before Start and for a DontListen server.
func (s *Server) ClientURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientURL()
}

func (s *Server) clientURL() string {
	if s.ns == nil || s.info.dontListen {
		return ""
	}
	addr, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	scheme := "nats"
	if s.info.tls {
		scheme = "tls"
	}
	return scheme + "://" + net.JoinHostPort(dialHost(s.info.host), strconv.Itoa(addr.Port))
}

// ClusterURL returns this server's route URL, such as
// nats-route://127.0.0.1:36123, for other servers' ClusterConfig.Routes.
// It is empty before Start and when clustering is off.
func (s *Server) ClusterURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil {
		return ""
	}
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + net.JoinHostPort(dialHost(s.info.clusterHost), strconv.Itoa(addr.Port))
}

// MonitorURL returns the monitoring base URL, such as
// http://127.0.0.1:8222. It is empty before Start and when HTTPPort is 0.
func (s *Server) MonitorURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil {
		return ""
	}
	addr := s.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + net.JoinHostPort(dialHost(s.info.httpHost), strconv.Itoa(addr.Port))
}

// dialHost turns a wildcard listen host into one a client can dial.
func dialHost(h string) string {
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return DefaultHost
	}
	return h
}

// ConnectOptions returns the nats options needed to reach this server:
// nats.InProcessServer for a DontListen server, nil otherwise. So
//
//	nats.Connect(s.ClientURL(), s.ConnectOptions()...)
//
// works for both kinds.
func (s *Server) ConnectOptions() []nats.Option {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil || !s.info.dontListen {
		return nil
	}
	return []nats.Option{nats.InProcessServer(s.ns)}
}

// ClientAccount returns the account that clients connecting without
// credentials use: Config.MeshAccount, or nats-server's global account
// "$G". With a ConfigFile it is what the file's no_auth_user maps to, if
// anything, else "$G".
func (s *Server) ClientAccount() string {
	if s.cfg.MeshAccount != "" {
		return s.cfg.MeshAccount
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts != nil && s.opts.NoAuthUser != "" {
		for _, u := range s.opts.Users {
			if u.Username == s.opts.NoAuthUser && u.Account != nil {
				return u.Account.Name
			}
		}
	}
	return globalAccount
}

// StoreDir returns the JetStream store directory in use, or "" when
// JetStream is off or before Start.
func (s *Server) StoreDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil {
		return ""
	}
	return s.info.storeDir
}

// WaitRoutes waits until this server is routed to at least n other
// servers, or returns an error after timeout. It counts peer servers, not
// route connections: nats-server pools several connections per peer.
func (s *Server) WaitRoutes(n int, timeout time.Duration) error {
	ns := s.NATS()
	if ns == nil {
		return errors.New("embedded: wait routes: server not started")
	}
	if ns.NumRemotes() >= n {
		return nil
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// nats-server has no route event to wait on, so poll.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return fmt.Errorf("embedded: wait routes on %q: %d of %d peers after %s",
				ns.Name(), ns.NumRemotes(), n, timeout)
		case <-tick.C:
			if ns.NumRemotes() >= n {
				return nil
			}
		}
	}
}

// Shutdown stops the server, waits until it has fully shut down and
// removes the temporary JetStream store dir, if Start created one. It is
// safe to call more than once, and before or without Start; later calls
// return at once. A Server cannot be restarted.
func (s *Server) Shutdown() {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopped = true
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		s.removeTempDir()
	})
}

// removeTempDir removes the store dir Start created. Caller holds mu.
func (s *Server) removeTempDir() {
	if s.tempDir == "" {
		return
	}
	if err := os.RemoveAll(s.tempDir); err != nil {
		s.log.Warn("remove JetStream store dir", "dir", s.tempDir, "err", err)
	}
	s.tempDir = ""
}

// firstMissing returns the outermost directory on the way to dir that does
// not exist yet (dir itself if only it is missing), or "" if dir exists
// or cannot be looked at.
func firstMissing(dir string) string {
	if dir == "" {
		return ""
	}
	missing := ""
	for d := filepath.Clean(dir); ; {
		if _, err := os.Stat(d); err == nil {
			return missing
		} else if !errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		missing = d
		parent := filepath.Dir(d)
		if parent == d {
			return missing
		}
		d = parent
	}
}

// removeEmptyDirs removes top (made by a failed start, see firstMissing)
// and the directories under it if none of them holds anything but
// directories: only what the failed start left, never data.
func removeEmptyDirs(top string) {
	if top == "" {
		return
	}
	var dirs []string
	errFile := errors.New("holds a file")
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return errFile
		}
		dirs = append(dirs, path)
		return nil
	})
	if err != nil {
		return
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if os.Remove(dirs[i]) != nil { // refuses a directory that is not empty
			return
		}
	}
}
