package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	registerPrefix(f, &m.cfg.Prefix)
	f.Var(enumFlag{&m.detector, []string{string(monitor.DetectorFixed), string(monitor.DetectorPhi)}}, "detector", "", "failure `detector`: fixed|phi")
	f.Var(floatFlag{&m.cfg.PhiThreshold, 1, 16}, "phi-threshold", "", "phi at which the phi detector convicts (suspects at half)")
	f.Var(floatFlag{&m.cfg.SuspectAfter, 1, 100}, "suspect-after", "", "silent `intervals` before a peer is suspect (and probed)")
	f.Var(floatFlag{&m.cfg.DeadAfter, 1, 100}, "dead-after", "", "silent `intervals`, probe unanswered, before a peer is dead")
	f.Var(intFlag{&m.cfg.MaxPeers, 1, 10_000_000}, "max-peers", "", "most peers kept; the least recently heard is forgotten")
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

func runMonitor(ctx context.Context, e *env, args []string) error {
	var (
		conn     connFlags
		logf     logFlags
		mf       monitorFlags
		asJSON   bool
		embed    bool
		port     = embedded.DefaultPort
		host     = embedded.DefaultHost
		confFile string
	)
	f := newFlags("monitor", "hbmesh monitor [--json] [--embedded] [flags]", `
Watch the beats of every node under --prefix and print each liveness
transition (alive, suspect, dead, left; restarts and id conflicts) on
stdout, one per line, until SIGINT or SIGTERM. With --json each line is a
JSON object: time, id, host, state, prev, reason, boot, seq, interval_ms,
restart. With --embedded the monitor also runs a NATS server in-process
that nodes elsewhere can connect to.`, []string{
		"hbmesh monitor --embedded                 # server and monitor on 127.0.0.1:4222",
		"hbmesh monitor -s nats://nats:4222 --json | jq -c 'select(.state==\"dead\")'",
		"hbmesh monitor --detector phi --phi-threshold 10",
	})
	f.Bool(&asJSON, "json", "", false, "print events as JSON lines")
	mf.register(f)
	f.section("Embedded server flags")
	f.Bool(&embed, "embedded", "", false, "run a NATS server in this process and monitor it")
	f.Var(intFlag{&port, -1, 65535}, "port", "", "embedded server client `port` (-1: random)")
	f.String(&host, "host", "", host, "embedded server listen `host`")
	f.String(&confFile, "config", "", "", "embedded server nats-server configuration `FILE`")
	f.section("Flags")
	conn.register(f, 5*time.Second, "connect `timeout`")
	logf.register(f)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if !embed && (f.isSet("port") || f.isSet("host") || f.isSet("config")) {
		return usagef("--port, --host and --config need --embedded")
	}
	if embed && f.isSet("server") {
		return usagef("--server and --embedded are exclusive: the embedded monitor connects to its own server")
	}
	if err := conn.validate(); err != nil {
		return err
	}
	log := logf.logger(e.stderr)
	cfg, err := mf.config(log.With("cmd", "monitor"))
	if err != nil {
		return err
	}

	if embed {
		ecfg := embedded.Config{Host: host, Port: port, ConfigFile: confFile, Logger: log.With("cmd", "server")}
		// A config file decides what the flags do not say explicitly.
		if confFile != "" && !f.isSet("host") {
			ecfg.Host = ""
		}
		if confFile != "" && !f.isSet("port") {
			ecfg.Port = 0
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
		log.Info("embedded NATS server ready", "url", conn.server)
	}

	out := &lineWriter{w: e.stdout}
	var fan sinks
	if asJSON {
		fan = append(fan, jsonSink(out))
	} else {
		fan = append(fan, textSink(out))
	}
	cfg.OnEvent = fan.emit

	cn, err := conn.dial(ctx, "hbmesh monitor", log)
	if err != nil {
		return err
	}
	defer cn.close()
	m, err := monitor.New(cn.Conn, cfg)
	if err != nil {
		return err
	}
	err = m.Run(cn.Context())
	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
