package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	oklog "github.com/oklog/run"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/memory"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// httpFlags are the flags of the monitor's HTTP surface; monitor and demo
// have them.
type httpFlags struct {
	Addr        string `name:"http" type:"httpaddr" placeholder:"ADDR" env:"HBMESH_HTTP" help:"serve the dashboard, /metrics, /livez, /readyz and /api on ADDR, e.g. 127.0.0.1:8080; a bare PORT or :PORT binds 127.0.0.1; 0.0.0.0:8080 exposes it on every interface (default: off)"`
	MetricsAddr string `name:"metrics-addr" type:"httpaddr" placeholder:"ADDR" env:"HBMESH_METRICS_ADDR" help:"serve only /metrics, /livez and /readyz on ADDR, e.g. 0.0.0.0:9464, so Prometheus can scrape from another host while the dashboard and API stay private (default: off)"`
	PerPeer     bool   `name:"per-peer-metrics" env:"HBMESH_PER_PEER_METRICS" help:"add per-peer series hbmesh_peer_up and hbmesh_peer_last_beat_age_seconds"`
	PerPeerCap  int    `name:"per-peer-metrics-cap" default:"${per_peer_cap}" min:"1" max:"100000" placeholder:"PEERS" env:"HBMESH_PER_PEER_METRICS_CAP" help:"most peers given per-peer series, worst state first"`
}

// eventsFlags are the flags of the event outputs besides stdout.
type eventsFlags struct {
	NoPublish bool         `name:"no-publish-events" env:"HBMESH_NO_PUBLISH_EVENTS" help:"do not publish transitions on <prefix>.events.<state>.<id> (published by default)"`
	Stream    string       `name:"events-stream" placeholder:"NAME" env:"HBMESH_EVENTS_STREAM" help:"also keep transitions in the JetStream stream NAME (created if missing)"`
	Hook      hookFlags    `embed:""`
	Webhook   webhookFlags `embed:""`
}

// hookFlags are the flags of the --on-event hook; monitor and notify have
// them.
type hookFlags struct {
	OnEvent string          `name:"on-event" placeholder:"COMMAND" env:"HBMESH_ON_EVENT" help:"run COMMAND with /bin/sh -c for each transition; the event is in $$HBMESH_STATE, $$HBMESH_PEER_ID, ... and as JSON on stdin"`
	States  []monitor.State `name:"on-event-states" type:"states" placeholder:"STATES" env:"HBMESH_ON_EVENT_STATES" help:"run --on-event only for these states, comma separated: alive,suspect,dead,left (default: all)"`
	Timeout time.Duration   `name:"on-event-timeout" default:"${on_event_timeout}" min:"10ms" max:"1h" placeholder:"DURATION" env:"HBMESH_ON_EVENT_TIMEOUT" help:"kill an --on-event command (its whole process group) still running after this long"`
}

// validate checks the combinations the flag types cannot.
func (h *hookFlags) validate(e *env) error {
	if h.OnEvent == "" {
		for _, name := range []string{"on-event-states", "on-event-timeout"} {
			if e.given(name) {
				return usagef("%s needs --on-event", e.source(name))
			}
		}
	}
	return nil
}

// memoryFlags are the flags of restart memory.
type memoryFlags struct {
	StateFile string        `name:"state-file" placeholder:"FILE" env:"HBMESH_STATE_FILE" help:"remember peers across restarts in this JSON FILE, in an existing directory (default: a JetStream KV bucket when the server has JetStream, else nothing); given by its variable, as the monitor's systemd unit does, it yields to --no-memory and --memory-bucket"`
	Bucket    string        `name:"memory-bucket" placeholder:"NAME" env:"HBMESH_MEMORY_BUCKET" help:"JetStream KV NAME for restart memory (default hbmesh_<prefix>_peers)"`
	NoMemory  bool          `name:"no-memory" env:"HBMESH_NO_MEMORY" help:"start with an empty peer table every time: no restart memory"`
	SaveEvery time.Duration `name:"save-every" default:"${save_every}" min:"100ms" max:"1h" placeholder:"DURATION" env:"HBMESH_SAVE_EVERY" help:"save restart memory this often, and once more at shutdown"`
	Replicas  int           `default:"1" min:"1" max:"5" placeholder:"N" env:"HBMESH_REPLICAS" help:"keep N replicas (1-5) of the JetStream assets the monitor creates: the restart memory bucket and the --events-stream stream (existing ones keep their own)"`
}

// yieldStateFile drops a state file that came from $HBMESH_STATE_FILE
// when --no-memory or --memory-bucket, flag or variable, chooses other
// memory: the monitor's unit sets HBMESH_STATE_FILE as its default, and
// its environment file offers the other two. A --state-file on the
// command line does not yield; validateStack refuses it beside them.
func (m *memoryFlags) yieldStateFile(e *env) {
	if m.StateFile != "" && !e.onCommandLine("state-file") && (m.NoMemory || m.Bucket != "") {
		m.StateFile = ""
		delete(e.from, "state-file")
	}
}

// validateStack checks the combinations the flag types cannot.
func validateStack(e *env, h httpFlags, ev eventsFlags, m memoryFlags) error {
	if m.NoMemory {
		for _, name := range []string{"state-file", "memory-bucket"} {
			if e.given(name) {
				return usagef("%s and %s are exclusive", e.source("no-memory"), e.source(name))
			}
		}
	}
	if m.StateFile != "" && m.Bucket != "" {
		return usagef("%s and %s are exclusive", e.source("state-file"), e.source("memory-bucket"))
	}
	if m.StateFile != "" {
		// Its directory is the operator's to make (systemd's
		// StateDirectory=, say): a typo there should not quietly create
		// a tree, and must fail before anything connects.
		if err := checkDir(e.source("state-file"), filepath.Dir(m.StateFile)); err != nil {
			return err
		}
	}
	if e.given("replicas") && (m.NoMemory || m.StateFile != "") && ev.Stream == "" {
		return usagef("%s applies to the KV restart memory and --events-stream: with --no-memory or --state-file it needs --events-stream", e.source("replicas"))
	}
	if err := ev.Hook.validate(e); err != nil {
		return err
	}
	if h.PerPeer && h.Addr == "" && h.MetricsAddr == "" {
		return usagef("%s needs --http or --metrics-addr", e.source("per-peer-metrics"))
	}
	if e.given("per-peer-metrics-cap") && !h.PerPeer {
		return usagef("%s needs --per-peer-metrics", e.source("per-peer-metrics-cap"))
	}
	if h.Addr != "" && h.Addr == h.MetricsAddr {
		return usagef("%s and %s name the same address", e.source("http"), e.source("metrics-addr"))
	}
	if ev.NoPublish && ev.Stream != "" {
		return usagef("%s needs published events: drop %s", e.source("events-stream"), e.source("no-publish-events"))
	}
	if err := ev.Webhook.validate(e); err != nil {
		return err
	}
	if m.Bucket != "" {
		// Only the bucket name is in question here: the other fields are
		// checked where they come from, so they get valid stand-ins.
		kv := memory.KVConfig{MonitorID: "x", Prefix: wire.DefaultPrefix, Bucket: m.Bucket, TTL: memory.DefaultTTL, Replicas: 1}
		if err := kv.Validate(); err != nil {
			return usagef("%s %q: %v", e.source("memory-bucket"), m.Bucket, err)
		}
	}
	return nil
}

// stack is a monitor with everything around it. Build it, then call run
// once.
type stack struct {
	id     string
	http   httpFlags
	events eventsFlags
	memory memoryFlags
	alert  alertFlags
	resend time.Duration // --alert-resend
	// webhookHeader and alertHeader are the --webhook-header and
	// --alert-header values, read from their files and variables.
	webhookHeader, alertHeader http.Header
	cfg                        monitor.Config // ID, OnEvent and Restore are set by run
	out                        sinks          // stdout sinks, first in the fan-out
	remember                   bool           // use restart memory (unless the flags say not)
	ln                         net.Listener   // --http, already listening; nil when off
	metricsLn                  net.Listener   // --metrics-addr, likewise
	log                        *slog.Logger
	onStart                    func(*monitor.Monitor) // called once the monitor exists, before it runs
	// dial opens the test connection of monitor.CheckFastPath to the
	// monitor's own server; nil skips the report of the crash fast path.
	dial func(name string) (*nats.Conn, error)
}

// listen opens the --http and --metrics-addr listeners, so that a bad or
// busy address fails before anything else starts.
func (s *stack) listen() error {
	if s.http.Addr != "" {
		ln, err := net.Listen("tcp", s.http.Addr)
		if err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		// httpapi logs "http server listening" once it serves on ln.
		s.ln = ln
	}
	if s.http.MetricsAddr != "" {
		ln, err := net.Listen("tcp", s.http.MetricsAddr)
		if err != nil {
			s.close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		// httpapi logs "metrics server listening".
		s.metricsLn = ln
	}
	return nil
}

// close closes the listeners that no server took over (harmless after
// one did: Serve closes its listener).
func (s *stack) close() {
	for _, ln := range []net.Listener{s.ln, s.metricsLn} {
		if ln != nil {
			ln.Close()
		}
	}
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
	log, cfg := s.log, s.cfg
	cfg.ID = s.id
	defer s.close()

	// Restart memory first: what it holds seeds the monitor.
	var store memory.Store
	if s.remember && !s.memory.NoMemory {
		mlog := log.With("cmd", "memory")
		opts := memory.Options{
			Path:   s.memory.StateFile,
			KV:     memory.KVConfig{MonitorID: cfg.ID, Prefix: cfg.Prefix, Bucket: s.memory.Bucket, Replicas: s.memory.Replicas, Logger: mlog},
			Logger: mlog,
		}
		var st memory.Store
		if s.memory.StateFile != "" {
			st, err = memory.Open(ctx, cn.Conn, opts)
		} else {
			st, err = openMemory(ctx, cn.Conn, opts, mlog)
		}
		switch {
		case err != nil && s.memory.StateFile != "":
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
	if !s.events.NoPublish {
		pcfg := events.DefaultNATSConfig()
		pcfg.MonitorID, pcfg.Prefix, pcfg.Stream, pcfg.Replicas = cfg.ID, cfg.Prefix, s.events.Stream, s.memory.Replicas
		pcfg.Logger = log.With("cmd", "events")
		pub, err := events.NewNATSPublisher(cn.Conn, pcfg)
		if err != nil {
			return err
		}
		fan = append(fan, pub.Handle)
		actors = append(actors, actor{"events", pub.Run})
		name := "nats"
		if s.events.Stream != "" {
			name = "stream"
		}
		outputs = append(outputs, httpapi.EventOutput{Name: name, Stats: pub.Stats})
	}
	if h := s.events.Hook; h.OnEvent != "" {
		ecfg := events.DefaultExecConfig(h.OnEvent)
		ecfg.States, ecfg.MonitorID, ecfg.Timeout = h.States, cfg.ID, h.Timeout
		ecfg.Logger = log.With("cmd", "on-event")
		hook, err := events.NewExec(ecfg)
		if err != nil {
			return err
		}
		fan = append(fan, hook.Handle)
		actors = append(actors, actor{"on-event", hook.Run})
		outputs = append(outputs, httpapi.EventOutput{Name: "exec", Stats: hook.Stats})
	}
	if s.events.Webhook.Webhook != "" {
		wcfg := events.DefaultWebhookConfig(s.events.Webhook.Webhook)
		wcfg.MonitorID, wcfg.Prefix, wcfg.ExternalURL, wcfg.Header = cfg.ID, cfg.Prefix, s.alert.ExternalURL, s.webhookHeader
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
	if len(s.alert.Alertmanager) > 0 {
		// The sink reads the dead peers from the monitor itself.
		acfg := events.DefaultAlertmanagerConfig(s.alert.Alertmanager...)
		acfg.Prefix, acfg.Labels, acfg.MonitorID, acfg.ExternalURL = cfg.Prefix, s.alert.Label, cfg.ID, s.alert.ExternalURL
		acfg.ResendInterval, acfg.Header = s.resend, s.alertHeader
		acfg.Logger = log.With("cmd", "alertmanager")
		am, err := events.NewAlertmanager(m, acfg)
		if err != nil {
			return err
		}
		fan = append(fan, am.Handle)
		actors = append(actors, actor{"alertmanager", am.Run})
		outputs = append(outputs, httpapi.EventOutput{Name: "alertmanager", Stats: am.Stats})
	}
	if s.ln != nil || s.metricsLn != nil {
		hcfg := httpapi.DefaultConfig()
		hcfg.Source, hcfg.Version, hcfg.Prefix = m, buildVersion().Version, cfg.Prefix
		hcfg.PerPeerMetrics, hcfg.PerPeerMetricsCap = s.http.PerPeer, s.http.PerPeerCap
		hcfg.EventOutputs = outputs
		hcfg.Logger = log.With("cmd", "http")
		api, err := httpapi.New(hcfg)
		if err != nil {
			return err
		}
		if ln := s.ln; ln != nil {
			fan = append(fan, api.Publish)
			actors = append(actors, actor{"http", func(ctx context.Context) error { return api.Serve(ctx, ln) }})
		}
		if ln := s.metricsLn; ln != nil {
			actors = append(actors, actor{"metrics", func(ctx context.Context) error { return api.ServeMetrics(ctx, ln) }})
		}
	}
	if store != nil {
		scfg := memory.DefaultSaverConfig()
		scfg.Interval, scfg.Logger = s.memory.SaveEvery, log.With("cmd", "memory")
		saver, err := memory.NewSaver(store, m.Peers, scfg)
		if err != nil {
			return err
		}
		actors = append(actors, actor{"restart memory", saver.Run})
	}

	// Discovery: the connection's own closed and error handlers were set
	// when it was dialled, so micro chains them rather than replacing them.
	dcfg := discovery.DefaultConfig()
	dcfg.Prefix, dcfg.Version, dcfg.Logger = cfg.Prefix, buildVersion().Version, log.With("cmd", "discovery")
	dcfg.Host, _ = os.Hostname()
	dcfg.PID = os.Getpid()
	svc, err := discovery.Register(cn.Conn, m, dcfg)
	if err != nil {
		return fmt.Errorf("register for discovery: %w", err)
	}
	defer svc.Stop()

	// The monitor stops when ctx is done, the connection fails for good,
	// or an actor fails (a sink that cannot start ends the monitor). The
	// actors outlive it a little: each is stopped only once the monitor
	// has returned, so they drain what it emitted last and the saver saves
	// its final table.
	mctx, mcancel := context.WithCancelCause(cn.Context())
	defer mcancel(nil)
	stopAfter := context.AfterFunc(ctx, func() { mcancel(context.Cause(ctx)) })
	defer stopAfter()
	actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
	defer acancel()
	mdone := make(chan struct{})
	var g oklog.Group
	g.Add(func() error {
		defer close(mdone)
		err := m.Run(mctx)
		_ = svc.Stop()
		return err
	}, func(err error) { mcancel(err) })
	for _, a := range actors {
		g.Add(func() error {
			err := a.run(actx)
			// Packages prefix their own errors ("events: stream ...");
			// say the actor's name only when they did not.
			if err != nil && !strings.HasPrefix(err.Error(), a.name+": ") {
				err = fmt.Errorf("%s: %w", a.name, err)
			}
			return err
		}, func(error) { <-mdone; acancel() })
	}
	if cfg.NoFastPath {
		log.Info("crash fast path off: --no-fast-path", "cmd", "monitor")
	}
	if s.dial != nil && !cfg.NoFastPath {
		// Says once whether the crash fast path is on, then waits for the
		// monitor, so that the monitor's error, not this, ends the group.
		rctx, rcancel := context.WithCancel(mctx)
		g.Add(func() error {
			reportFastPath(rctx, m, cfg.FastPathSettle, s.dial, log.With("cmd", "monitor"))
			<-mdone
			return nil
		}, func(error) { rcancel() })
	}
	if s.onStart != nil {
		s.onStart(m)
	}
	err = g.Run()

	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// defaultStoreDir is where an embedded server keeps JetStream data when
// --store-dir is not given: <user cache dir>/hbmesh/jetstream-<port>, so
// restart memory and the events stream survive a restart of the same
// monitor; "" (a temporary directory, removed at shutdown) when there is no
// cache dir or the port is random.
func defaultStoreDir(port int) string {
	dir, err := os.UserCacheDir()
	if port < 0 || err != nil {
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
