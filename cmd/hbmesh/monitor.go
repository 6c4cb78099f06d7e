package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/monitor"
)

// sinks fans one monitor event out to every consumer: stdout today; NATS
// event streams, webhooks and the HTTP UI plug in by appending a func.
// monitor.Config.OnEvent calls emit from one goroutine, in order, so a
// sink sees events in order too, but a slow sink delays the others: a sink
// that does I/O which may block should queue internally.
type sinks []func(monitor.Event)

func (s sinks) emit(ev monitor.Event) {
	for _, sink := range s {
		sink(ev)
	}
}

// lineWriter writes whole lines to w with one Write each, under a mutex,
// so concurrent writers never interleave within a line. If w can be
// flushed, each line is flushed at once: a pipe reader sees every event as
// it happens.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (l *lineWriter) writeLine(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(append(l.buf[:0], line...), '\n')
	_, _ = l.w.Write(l.buf)
	if f, ok := l.w.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

func (l *lineWriter) printf(format string, args ...any) {
	l.writeLine(fmt.Appendf(nil, format, args...))
}

// jsonSink prints each event as one JSON object per line.
func jsonSink(out *lineWriter) func(monitor.Event) {
	var buf []byte // only touched from the OnEvent goroutine
	return func(ev monitor.Event) {
		buf = ev.AppendJSON(buf[:0], "")
		out.writeLine(buf)
	}
}

// textSink prints each event as one readable line.
func textSink(out *lineWriter) func(monitor.Event) {
	return func(ev monitor.Event) { out.writeLine([]byte(ev.String())) }
}

// monitorFlags are the detector flags, shared by monitor and demo.
type monitorFlags struct {
	cfg      monitor.Config
	detector string
}

func (m *monitorFlags) register(f *flags) {
	m.cfg = monitor.DefaultConfig()
	m.detector = string(m.cfg.Detector)
	f.section("Detection flags")
	registerPrefix(f, &m.cfg.Prefix)
	f.Var(enumFlag{&m.detector, []string{string(monitor.DetectorFixed), string(monitor.DetectorPhi)}}, "detector", "", "failure `detector`: fixed|phi")
	f.Var(floatFlag{&m.cfg.PhiThreshold, 1, 16}, "phi-threshold", "", "phi at which the phi detector convicts (suspects at half)")
	f.Var(floatFlag{&m.cfg.SuspectAfter, 1, 100}, "suspect-after", "", "silent `intervals` before a peer is suspect (and probed)")
	f.Var(floatFlag{&m.cfg.DeadAfter, 1, 100}, "dead-after", "", "silent `intervals`, probe unanswered, before a peer is dead")
	f.Var(intFlag{&m.cfg.MaxPeers, 1, 10_000_000}, "max-peers", "", "keep at most `N` peers; when full, the least recently heard id seen only once\ngoes first, and an established peer (two beats or more) only when there is none")
	f.Var(durationFlag{&m.cfg.Retention, time.Minute, 365 * 24 * time.Hour}, "retention", "", "keep dead and left peers for this `duration` before forgetting them; a\nforgotten dead peer no longer counts as dead")
	// monitor.Config.BeatQueue's zero value is its automatic size.
	f.Var(autoIntFlag{intFlag{&m.cfg.BeatQueue, 1024, 1 << 24}}, "beat-queue", "", "received `beats` that may wait for the monitor before NATS drops more,\n1024-16777216 (default 0: automatic, 2×--max-peers within [4096, 262144])")
	f.section("Flags")
}

// config returns the monitor config, or a usage error naming the flag
// combination that does not fit.
func (m *monitorFlags) config(log *slog.Logger) (monitor.Config, error) {
	cfg := m.cfg
	cfg.Detector = monitor.Detector(m.detector)
	cfg.Logger = log
	if cfg.DeadAfter <= cfg.SuspectAfter {
		return cfg, usagef("--dead-after %v must exceed --suspect-after %v", cfg.DeadAfter, cfg.SuspectAfter)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// defaultHTTPHost is what --http binds when given only a port: the
// dashboard and API are read-only but reveal the fleet, so exposing them
// must be asked for by naming a host such as 0.0.0.0.
const defaultHTTPHost = "127.0.0.1"

// httpAddrFlag is a listen address: HOST:PORT, :PORT or PORT, the last two
// meaning defaultHTTPHost.
type httpAddrFlag struct{ s *string }

func (v httpAddrFlag) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v httpAddrFlag) Set(s string) error {
	addr := s
	if _, err := strconv.Atoi(s); err == nil {
		addr = ":" + s
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number in [0, 65535]", port)
	}
	if host == "" {
		host = defaultHTTPHost
	}
	*v.s = net.JoinHostPort(host, port)
	return nil
}

// statesFlag is a comma-separated list of monitor states.
type statesFlag struct{ l *[]monitor.State }

func (v statesFlag) String() string {
	if v.l == nil {
		return ""
	}
	var names []string
	for _, st := range *v.l {
		names = append(names, st.String())
	}
	return strings.Join(names, ",")
}

func (v statesFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		st, err := monitor.ParseState(p)
		if err != nil || st == monitor.StateUnknown {
			return fmt.Errorf("unknown state %q (want alive, suspect, dead or left)", p)
		}
		if !slices.Contains(*v.l, st) {
			*v.l = append(*v.l, st)
		}
	}
	return nil
}

func runMonitor(ctx context.Context, e *env, args []string) error {
	var (
		conn     connFlags
		logf     logFlags
		mf       monitorFlags
		sf       stackFlags
		asJSON   bool
		embed    bool
		port     = embedded.DefaultPort
		host     = embedded.DefaultHost
		confFile string
		storeDir string
	)
	f := newFlags("monitor", "hbmesh monitor [--json] [--http ADDR] [--embedded] [flags]", `
Watch the beats of every node under --prefix and print each liveness
transition (alive, suspect, dead, left; restarts and id conflicts) on
stdout, one per line, until SIGINT or SIGTERM. With --json each line is a
JSON object: time, id, host, state, prev (absent on a peer's first event),
reason, boot, seq, interval_ms, restart.

Every transition is also published on <prefix>.events.<state>.<id>, and the
monitor answers 'hbmesh status' and 'nats micro ls' as the hbmesh-monitor
service. It remembers its peers across restarts (--state-file, or a
JetStream KV bucket when the server has JetStream), so a node that died
while the monitor was down is still reported dead; keep --id stable for
that. --http serves a dashboard, Prometheus /metrics, /livez, /readyz and a
JSON API. With --embedded the monitor also runs a NATS server, with
JetStream, in-process; it listens on 127.0.0.1 unless --host says
otherwise, so nodes on other hosts need --host 0.0.0.0 (and --config with
authorization, see deploy/auth, once it is exposed).`, []string{
		"hbmesh monitor --embedded                 # server and monitor on 127.0.0.1:4222",
		"hbmesh monitor --embedded --host 0.0.0.0  # ... that nodes on other hosts can reach",
		"hbmesh monitor -s nats://nats:4222 --json | jq -c 'select(.state==\"dead\")'",
		"hbmesh monitor --http 127.0.0.1:8080      # dashboard at http://127.0.0.1:8080/",
		"hbmesh monitor --on-event 'logger -t hbmesh \"$HBMESH_PEER_ID $HBMESH_STATE\"' --on-event-states dead",
		"hbmesh monitor --user monitor1 --password ... --inbox-prefix _INBOX_monitor1",
	})
	f.Bool(&asJSON, "json", "", false, "print events as JSON lines")
	sf.registerID(f)
	mf.register(f)
	sf.registerHTTP(f)
	sf.registerEvents(f)
	sf.registerMemory(f)
	f.section("Embedded server flags")
	f.Bool(&embed, "embedded", "", false, "run a NATS server with JetStream in this process and monitor it")
	f.Var(intFlag{&port, -1, 65535}, "port", "", "embedded server client `port` (-1: random)")
	f.String(&host, "host", "", host, "embedded server listen `host`; 0.0.0.0 lets nodes on other hosts connect")
	f.String(&confFile, "config", "", "", "embedded server nats-server configuration `FILE`")
	f.String(&storeDir, "store-dir", "", "", "embedded server JetStream store `dir` (default: <user cache dir>/hbmesh/jetstream-<port>,\nor a temporary dir removed at exit when there is none or --port is -1)")
	f.section("Flags")
	conn.register(f, 5*time.Second, "connect `timeout`")
	logf.register(f)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if !embed && (f.isSet("port") || f.isSet("host") || f.isSet("config") || f.isSet("store-dir")) {
		return usagef("--port, --host, --config and --store-dir need --embedded")
	}
	if embed && (f.isSet("server") || f.isSet("context")) {
		return usagef("--server, --context and --embedded are exclusive: the embedded monitor connects to its own server")
	}
	if err := sf.validate(f); err != nil {
		return err
	}
	if confFile != "" {
		if err := checkFile("--config", confFile); err != nil {
			return err
		}
	}
	if err := conn.validate(e); err != nil {
		return err
	}
	log := logf.logger(e.stderr)
	cfg, err := mf.config(log.With("cmd", "monitor"))
	if err != nil {
		return err
	}
	out := &lineWriter{w: e.stdout}
	st := &stack{flags: &sf, cfg: cfg, memory: true, log: log}
	if asJSON {
		st.out = sinks{jsonSink(out)}
	} else {
		st.out = sinks{textSink(out)}
	}
	if err := st.listen(); err != nil {
		return err
	}
	defer func() {
		if st.ln != nil {
			st.ln.Close() // harmless after Serve closed it
		}
	}()

	if embed {
		ecfg := embedded.Config{Host: host, Port: port, ConfigFile: confFile, JetStream: true, StoreDir: storeDir, Logger: logf.quiet(log).With("cmd", "server")}
		if confFile == "" {
			// The file decides the accounts; without one, the mesh gets
			// its own, which sees its DISCONNECT advisories.
			ecfg.MeshAccount = embedded.DefaultMeshAccount
		}
		// A config file decides what the flags do not say explicitly.
		if confFile != "" && !f.isSet("host") {
			ecfg.Host = ""
		}
		if confFile != "" && !f.isSet("port") {
			ecfg.Port = 0
		}
		if storeDir == "" && confFile == "" {
			ecfg.StoreDir = defaultStoreDir(e, port)
		}
		srv, err := embedded.New(ecfg)
		if err != nil {
			return usagef("%v", err)
		}
		if err := srv.Start(); err != nil {
			return err
		}
		defer srv.Shutdown()
		conn.server = srv.ClientURL()
		log.Info("embedded NATS server ready", "cmd", "monitor", "url", conn.server, "store_dir", ecfg.StoreDir)
	}

	cn, err := conn.dial(ctx, "hbmesh monitor "+sf.id, log.With("cmd", "monitor"))
	if err != nil {
		return err
	}
	defer cn.close()
	st.dial = conn.dialCheck(cn.ConnectedUrl(), log.With("cmd", "monitor"))
	return st.run(ctx, cn)
}
