package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/memory"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// stackFlags are the flags of everything built around a monitor: its id,
// the HTTP surface, the event sinks and restart memory. monitor uses them
// all; demo a few.
type stackFlags struct {
	id             string
	httpAddr       string
	perPeer        bool
	perPeerCap     int
	noPublish      bool
	stream         string
	onEvent        string
	onEventStates  []monitor.State
	onEventTimeout time.Duration
	webhook        string
	stateFile      string
	noMemory       bool
	bucket         string
	saveEvery      time.Duration
	replicas       int
}

func (s *stackFlags) registerID(f *flags) {
	host, _ := os.Hostname()
	s.id = wire.IDFromHostname(host)
	f.Var(idFlag{&s.id}, "id", "", "monitor `ID` in events, status and restart memory; keep it stable across\nrestarts and unique per monitor; derived from the hostname")
}

func (s *stackFlags) registerHTTP(f *flags) {
	s.perPeerCap = httpapi.DefaultPerPeerMetricsCap
	f.section("HTTP flags")
	f.Var(httpAddrFlag{&s.httpAddr}, "http", "", "serve the dashboard, /metrics, /livez, /readyz and /api on `ADDR`, e.g.\n127.0.0.1:8080; a bare PORT or :PORT binds 127.0.0.1; 0.0.0.0:8080\nexposes it on every interface (default: off)")
	f.Bool(&s.perPeer, "per-peer-metrics", "", false, "add per-peer series hbmesh_peer_up and hbmesh_peer_last_beat_age_seconds")
	f.Var(intFlag{&s.perPeerCap, 1, 100_000}, "per-peer-metrics-cap", "", "most `peers` given per-peer series, worst state first")
	f.section("Flags")
}

func (s *stackFlags) registerEvents(f *flags) {
	s.onEventTimeout = events.DefaultExecTimeout
	f.section("Events flags")
	f.Bool(&s.noPublish, "no-publish-events", "", false, "do not publish transitions on <prefix>.events.<state>.<id> (published by default)")
	f.String(&s.stream, "events-stream", "", "", "also keep transitions in the JetStream stream `NAME` (created if missing)")
	f.String(&s.onEvent, "on-event", "", "", "run `COMMAND` with /bin/sh -c for each transition; the event is in\n$HBMESH_STATE, $HBMESH_PEER_ID, ... and as JSON on stdin")
	f.Var(statesFlag{&s.onEventStates}, "on-event-states", "", "run --on-event only for these `states`, comma separated: alive,suspect,dead,left\n(default: all)")
	f.Var(durationFlag{&s.onEventTimeout, 10 * time.Millisecond, time.Hour}, "on-event-timeout", "", "kill an --on-event command still running after this `duration`")
	f.String(&s.webhook, "webhook", "", "", "POST Alertmanager-compatible alerts for dead peers (firing) and their\nrecovery (resolved) to `URL`")
	f.section("Flags")
}

func (s *stackFlags) registerMemory(f *flags) {
	s.saveEvery = memory.DefaultSaveInterval
	f.section("Memory flags")
	f.String(&s.stateFile, "state-file", "", "", "remember peers across restarts in this JSON `FILE`, in an existing directory\n(default: a JetStream KV bucket when the server has JetStream, else nothing)")
	f.String(&s.bucket, "memory-bucket", "", "", "JetStream KV `NAME` for restart memory (default hbmesh_<prefix>_peers)")
	f.Bool(&s.noMemory, "no-memory", "", false, "start with an empty peer table every time: no restart memory")
	f.Var(durationFlag{&s.saveEvery, 100 * time.Millisecond, time.Hour}, "save-every", "", "save restart memory every `interval`, and once more at shutdown")
	s.replicas = 1
	f.Var(intFlag{&s.replicas, 1, 5}, "replicas", "", "keep `N` replicas (1-5) of the JetStream assets the monitor creates: the\nrestart memory bucket and the --events-stream stream (existing ones keep\ntheir own)")
	f.section("Flags")
}

// validate checks the combinations the flag types cannot.
func (s *stackFlags) validate(f *flags) error {
	if s.noMemory && (s.stateFile != "" || s.bucket != "") {
		return usagef("--no-memory excludes --state-file and --memory-bucket")
	}
	if s.stateFile != "" && s.bucket != "" {
		return usagef("--state-file and --memory-bucket are exclusive")
	}
	if s.stateFile != "" {
		// Its directory is the operator's to make (systemd's
		// StateDirectory=, say): a typo there should not quietly create
		// a tree, and must fail before anything connects.
		if err := checkDir("--state-file", filepath.Dir(s.stateFile)); err != nil {
			return err
		}
	}
	if f.isSet("replicas") && (s.noMemory || s.stateFile != "") && s.stream == "" {
		return usagef("--replicas applies to the KV restart memory and --events-stream: with --no-memory or --state-file it needs --events-stream")
	}
	if s.onEvent == "" && (f.isSet("on-event-states") || f.isSet("on-event-timeout")) {
		return usagef("--on-event-states and --on-event-timeout need --on-event")
	}
	if s.perPeer && s.httpAddr == "" || f.isSet("per-peer-metrics-cap") && !s.perPeer {
		return usagef("--per-peer-metrics needs --http, and --per-peer-metrics-cap needs --per-peer-metrics")
	}
	if s.noPublish && s.stream != "" {
		return usagef("--events-stream needs published events: drop --no-publish-events")
	}
	if s.webhook != "" {
		cfg := events.DefaultWebhookConfig(s.webhook)
		if err := cfg.Validate(); err != nil {
			return usagef("invalid value %q for flag --webhook: want an http or https URL", s.webhook)
		}
	}
	if s.bucket != "" {
		// Only the bucket name is in question here: the other fields are
		// checked where they come from, so they get valid stand-ins.
		kv := memory.KVConfig{MonitorID: "x", Prefix: wire.DefaultPrefix, Bucket: s.bucket, TTL: memory.DefaultTTL, Replicas: 1}
		if err := kv.Validate(); err != nil {
			return usagef("invalid value %q for flag --memory-bucket: %v", s.bucket, err)
		}
	}
	return nil
}

// stack is a monitor with everything around it. Build it, then call run
// once.
type stack struct {
	flags   *stackFlags
	cfg     monitor.Config // OnEvent and Restore are set by run
	out     sinks          // stdout sinks, first in the fan-out
	memory  bool           // use restart memory (unless flags say not)
	ln      net.Listener   // --http, already listening; nil when off
	log     *slog.Logger
	onStart func(*monitor.Monitor) // called once the monitor exists, before it runs
	// dial opens the test connection of monitor.CheckFastPath to the
	// monitor's own server; nil skips the report of the crash fast path.
	dial func(name string) (*nats.Conn, error)
}

// listen opens the --http listener, so that a bad or busy address fails
// before anything else starts.
func (s *stack) listen() error {
	if s.flags.httpAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.flags.httpAddr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	// httpapi logs "http server listening" once it serves on ln.
	s.ln = ln
	return nil
}

// actor is one goroutine of the stack besides the monitor: it runs until
// its context is done.
type actor struct {
	name string
	run  func(context.Context) error
}

// run loads restart memory, builds the monitor and its sinks, registers the
// monitor for discovery and runs it all until ctx is done or cn fails. The
// monitor stops first; then the sinks drain, the saver saves once more and
// the HTTP server shuts down; run returns after every goroutine is done.
func (s *stack) run(ctx context.Context, cn *conn) (err error) {
	sf, log, cfg := s.flags, s.log, s.cfg
	cfg.ID = sf.id
	served := false
	defer func() {
		if s.ln != nil && !served {
			s.ln.Close()
		}
	}()

	// Restart memory first: what it holds seeds the monitor.
	var store memory.Store
	if s.memory && !sf.noMemory {
		mlog := log.With("cmd", "memory")
		opts := memory.Options{
			Path:   sf.stateFile,
			KV:     memory.KVConfig{MonitorID: cfg.ID, Prefix: cfg.Prefix, Bucket: sf.bucket, Replicas: sf.replicas, Logger: mlog},
			Logger: mlog,
		}
		var st memory.Store
		if sf.stateFile != "" {
			st, err = memory.Open(ctx, cn.Conn, opts)
		} else {
			st, err = openMemory(ctx, cn.Conn, opts, mlog)
		}
		switch {
		case err != nil && sf.stateFile != "":
			return fmt.Errorf("restart memory: %w", err) // asked for by name: a real error
		case err != nil:
			// The automatic KV choice failed even after retries (say, a
			// cluster still electing its JetStream leader). Judging peers
			// matters more than remembering them: carry on without.
			mlog.Error("restart memory unavailable; running without it", "err", err)
		default:
			store = st
		}
	}
	if store != nil {
		defer store.Close()
		peers, err := store.Load(ctx)
		if err != nil {
			log.Warn("restart memory unreadable, starting empty", "cmd", "memory", "err", err)
		} else {
			cfg.Restore = peers
			log.Info("restart memory loaded", "cmd", "memory", "peers", len(peers))
		}
	}

	fan := append(sinks(nil), s.out...)
	var actors []actor
	var outputs []httpapi.EventOutput // counted on /metrics
	if !sf.noPublish {
		pcfg := events.DefaultNATSConfig()
		pcfg.MonitorID, pcfg.Prefix, pcfg.Stream, pcfg.Replicas = cfg.ID, cfg.Prefix, sf.stream, sf.replicas
		pcfg.Logger = log.With("cmd", "events")
		pub, err := events.NewNATSPublisher(cn.Conn, pcfg)
		if err != nil {
			return err
		}
		fan = append(fan, pub.Handle)
		actors = append(actors, actor{"events", pub.Run})
		name := "nats"
		if sf.stream != "" {
			name = "stream"
		}
		outputs = append(outputs, httpapi.EventOutput{Name: name, Stats: pub.Stats})
	}
	if sf.onEvent != "" {
		ecfg := events.DefaultExecConfig(sf.onEvent)
		ecfg.States, ecfg.MonitorID, ecfg.Timeout = sf.onEventStates, cfg.ID, sf.onEventTimeout
		ecfg.Logger = log.With("cmd", "on-event")
		hook, err := events.NewExec(ecfg)
		if err != nil {
			return err
		}
		fan = append(fan, hook.Handle)
		actors = append(actors, actor{"on-event", hook.Run})
		outputs = append(outputs, httpapi.EventOutput{Name: "exec", Stats: hook.Stats})
	}
	if sf.webhook != "" {
		wcfg := events.DefaultWebhookConfig(sf.webhook)
		wcfg.MonitorID, wcfg.Prefix = cfg.ID, cfg.Prefix
		wcfg.Logger = log.With("cmd", "webhook")
		wh, err := events.NewWebhook(wcfg)
		if err != nil {
			return err
		}
		fan = append(fan, wh.Handle)
		actors = append(actors, actor{"webhook", wh.Run})
		outputs = append(outputs, httpapi.EventOutput{Name: "webhook", Stats: wh.Stats})
	}
	// fan is complete before the monitor runs, which is the only time
	// OnEvent is called.
	cfg.OnEvent = func(ev monitor.Event) { fan.emit(ev) }
	m, err := monitor.New(cn.Conn, cfg)
	if err != nil {
		return err
	}
	if s.ln != nil {
		hcfg := httpapi.DefaultConfig()
		hcfg.Source, hcfg.Version, hcfg.Prefix = m, version, cfg.Prefix
		hcfg.PerPeerMetrics, hcfg.PerPeerMetricsCap = sf.perPeer, sf.perPeerCap
		hcfg.EventOutputs = outputs
		hcfg.Logger = log.With("cmd", "http")
		api, err := httpapi.New(hcfg)
		if err != nil {
			return err
		}
		fan = append(fan, api.Publish)
		ln := s.ln
		served = true
		actors = append(actors, actor{"http", func(ctx context.Context) error { return api.Serve(ctx, ln) }})
	}
	if store != nil {
		scfg := memory.DefaultSaverConfig()
		scfg.Interval, scfg.Logger = sf.saveEvery, log.With("cmd", "memory")
		saver, err := memory.NewSaver(store, m.Peers, scfg)
		if err != nil {
			return err
		}
		actors = append(actors, actor{"restart memory", saver.Run})
	}

	// Discovery: the connection's own closed and error handlers were set
	// when it was dialled, so micro chains them rather than replacing them.
	dcfg := discovery.DefaultConfig()
	dcfg.Prefix, dcfg.Version, dcfg.Logger = cfg.Prefix, version, log.With("cmd", "discovery")
	dcfg.Host, _ = os.Hostname()
	dcfg.PID = os.Getpid()
	svc, err := discovery.Register(cn.Conn, m, dcfg)
	if err != nil {
		return fmt.Errorf("register for discovery: %w", err)
	}
	defer svc.Stop()

	// The monitor stops when ctx is done or the connection fails for good.
	mctx, mcancel := context.WithCancelCause(cn.Context())
	defer mcancel(nil)
	stopAfter := context.AfterFunc(ctx, func() { mcancel(context.Cause(ctx)) })
	defer stopAfter()
	// The actors outlive the monitor a little: they drain what it emitted
	// last, and the saver saves its final table.
	actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
	defer acancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		actorErr error
	)
	for _, a := range actors {
		wg.Go(func() {
			if err := a.run(actx); err != nil {
				// Packages prefix their own errors ("events: stream
				// ..."); say the actor's name only when they did not.
				if !strings.HasPrefix(err.Error(), a.name+": ") {
					err = fmt.Errorf("%s: %w", a.name, err)
				}
				mu.Lock()
				if actorErr == nil {
					actorErr = err
				}
				mu.Unlock()
				mcancel(err) // a sink that cannot start ends the monitor
			}
		})
	}
	if s.onStart != nil {
		s.onStart(m)
	}
	if s.dial != nil && !cfg.NoFastPath {
		wg.Go(func() { reportFastPath(mctx, m, cfg.FastPathSettle, s.dial, log.With("cmd", "monitor")) })
	}
	merr := m.Run(mctx)
	mcancel(nil) // Run may have ended on its own (a closed connection)
	_ = svc.Stop()
	acancel()
	wg.Wait()

	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	if actorErr != nil {
		return actorErr
	}
	if merr != nil && !errors.Is(merr, context.Canceled) {
		return merr
	}
	return nil
}

// defaultStoreDir is where an embedded server keeps JetStream data when
// --store-dir is not given: <user cache dir>/hbmesh/jetstream-<port>, so
// restart memory and the events stream survive a restart of the same
// monitor; "" (a temporary directory, removed at shutdown) when there is no
// cache dir or the port is random.
func defaultStoreDir(e *env, port int) string {
	if port < 0 {
		return ""
	}
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = e.getenv("LocalAppData")
	case "darwin", "ios":
		if h := e.getenv("HOME"); h != "" {
			dir = filepath.Join(h, "Library", "Caches")
		}
	default:
		if x := e.getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
			dir = x
		} else if h := e.getenv("HOME"); h != "" {
			dir = filepath.Join(h, ".cache")
		}
	}
	if dir == "" {
		return ""
	}
	if port == 0 {
		port = embedded.DefaultPort
	}
	return filepath.Join(dir, "hbmesh", "jetstream-"+strconv.Itoa(port))
}

// openMemory opens restart memory, retrying a few times: right after a
// cluster starts, JetStream may not have a leader yet and bucket creation
// times out.
func openMemory(ctx context.Context, nc *nats.Conn, opts memory.Options, log *slog.Logger) (memory.Store, error) {
	const attempts = 5
	var err error
	for i := range attempts {
		var st memory.Store
		if st, err = memory.Open(ctx, nc, opts); err == nil {
			return st, nil
		}
		if i == attempts-1 {
			break
		}
		log.Warn("restart memory not ready, retrying", "err", err, "attempt", i+1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(i+1) * time.Second):
		}
	}
	return nil, err
}
