package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
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

// detectionFlags are the detector's flags.
type detectionFlags struct {
	Mesh         prefixFlag    `embed:""`
	Detector     string        `enum:"fixed,phi" default:"${detector}" placeholder:"fixed|phi" env:"HBMESH_DETECTOR" help:"failure detector"`
	PhiThreshold float64       `default:"${phi_threshold}" min:"1" max:"16" placeholder:"PHI" env:"HBMESH_PHI_THRESHOLD" help:"phi at which the phi detector convicts (suspects at half)"`
	SuspectAfter float64       `default:"${suspect_after}" min:"1" max:"100" placeholder:"INTERVALS" env:"HBMESH_SUSPECT_AFTER" help:"silent intervals before a peer is suspect (and probed)"`
	DeadAfter    float64       `default:"${dead_after}" min:"1" max:"100" placeholder:"INTERVALS" env:"HBMESH_DEAD_AFTER" help:"silent intervals, probe unanswered, before a peer is dead"`
	MaxPeers     int           `default:"${max_peers}" min:"1" max:"10000000" placeholder:"N" env:"HBMESH_MAX_PEERS" help:"keep at most N peers; when full, the least recently heard id seen only once goes first, and an established peer (two beats or more) only when there is none"`
	Retention    time.Duration `default:"${retention}" min:"1m" max:"8760h" placeholder:"DURATION" env:"HBMESH_RETENTION" help:"keep dead and left peers this long before forgetting them; a forgotten dead peer no longer counts as dead"`
	// monitor.Config.BeatQueue's zero value is its automatic size.
	BeatQueue int `auto:"" min:"1024" max:"16777216" placeholder:"BEATS" env:"HBMESH_BEAT_QUEUE" help:"received beats that may wait for the monitor before NATS drops more, 1024-16777216 (default 0: automatic, 2×--max-peers within [4096, 262144])"`
	// The crash fast path (docs/RELIABILITY.md#crash-fast-path).
	NoFastPath       bool          `env:"HBMESH_NO_FAST_PATH" help:"judge by beats and probes alone: ignore the server's DISCONNECT advisories (the crash fast path)"`
	Advisories       string        `default:"${advisories}" placeholder:"SUBJECT" env:"HBMESH_ADVISORIES" help:"subject of the DISCONNECT advisories the account imports; change it only if the import maps them elsewhere"`
	DisconnectMargin time.Duration `default:"${disconnect_margin}" min:"0s" max:"1m" placeholder:"DURATION" env:"HBMESH_DISCONNECT_MARGIN" help:"added to a node's reconnect window before a disconnected node is checked: its reconnect handshake and one route hop; raise it for nodes far from their servers"`
}

// config returns the monitor config, or a usage error naming the flag
// combination that does not fit.
func (d *detectionFlags) config(log *slog.Logger) (monitor.Config, error) {
	cfg := monitor.DefaultConfig()
	cfg.Prefix, cfg.Detector, cfg.PhiThreshold = d.Mesh.Prefix, monitor.Detector(d.Detector), d.PhiThreshold
	cfg.SuspectAfter, cfg.DeadAfter, cfg.MaxPeers = d.SuspectAfter, d.DeadAfter, d.MaxPeers
	cfg.Retention, cfg.BeatQueue, cfg.Logger = d.Retention, d.BeatQueue, log
	cfg.NoFastPath, cfg.Advisories, cfg.DisconnectMargin = d.NoFastPath, d.Advisories, d.DisconnectMargin
	if cfg.DisconnectMargin == 0 {
		cfg.DisconnectMargin = time.Nanosecond // zero asks for none, not for the default
	}
	if cfg.DeadAfter <= cfg.SuspectAfter {
		return cfg, usagef("--dead-after %v must exceed --suspect-after %v", cfg.DeadAfter, cfg.SuspectAfter)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// monitorCmd is `hbmesh monitor`.
type monitorCmd struct {
	JSON      bool           `env:"HBMESH_JSON" help:"print events as JSON lines"`
	ID        string         `type:"id" placeholder:"ID" env:"HBMESH_ID" help:"monitor ID in events, status and restart memory; keep it stable across restarts and unique per monitor; derived from the hostname"`
	Detection detectionFlags `embed:"" group:"detection"`
	HTTP      httpFlags      `embed:"" group:"http"`
	Events    eventsFlags    `embed:"" group:"events"`
	Alert     alertFlags     `embed:"" group:"alerting"`
	Resend    time.Duration  `name:"alert-resend" group:"alerting" default:"${alert_resend}" min:"100ms" max:"1h" placeholder:"DURATION" env:"HBMESH_ALERT_RESEND" help:"post every dead peer's alert again this often, with endsAt 4 times as far ahead: alerts stay firing while a monitor runs and resolve by themselves once none does"`
	Memory    memoryFlags    `embed:"" group:"memory"`

	Embedded bool   `group:"embedded" env:"HBMESH_EMBEDDED" help:"run a NATS server with JetStream in this process and monitor it"`
	Port     int    `group:"embedded" default:"${embedded_port}" min:"-1" max:"65535" placeholder:"PORT" env:"HBMESH_PORT" help:"embedded server client port (-1: random)"`
	Host     string `group:"embedded" default:"${embedded_host}" placeholder:"HOST" env:"HBMESH_HOST" help:"embedded server listen host; 0.0.0.0 lets nodes on other hosts connect"`
	Config   string `group:"embedded" placeholder:"FILE" env:"HBMESH_CONFIG" help:"embedded server nats-server configuration FILE"`
	StoreDir string `group:"embedded" placeholder:"DIR" env:"HBMESH_STORE_DIR" help:"embedded server JetStream store DIR (default: <user cache dir>/hbmesh/jetstream-<port>, or a temporary dir removed at exit when there is none or --port is -1)"`

	Conn connFlags `embed:"" group:"conn"`
	Log  logFlags  `embed:"" group:"log"`
}

func (c *monitorCmd) Help() string {
	return `Watch the beats of every node under --prefix and print each liveness transition (alive, suspect, dead, left; restarts and id conflicts) on stdout, one per line, until SIGINT, SIGTERM or SIGHUP. With --json each line is a JSON object: time, id, host, state, prev (absent on a peer's first event), reason, boot, seq, interval_ms, restart, last_beat (absent when the monitor has no beat of the peer's boot).

Every transition is also published on <prefix>.events.<state>.<id>, and the monitor answers 'hbmesh status' and 'nats micro ls' as the hbmesh-monitor service. It remembers its peers across restarts (--state-file, or a JetStream KV bucket when the server has JetStream), so a node that died while the monitor was down is still reported dead; keep --id stable for that. --http serves a dashboard, Prometheus /metrics, /livez, /readyz and a JSON API. With --embedded the monitor also runs a NATS server, with JetStream, in-process; it listens on 127.0.0.1 unless --host says otherwise, so nodes on other hosts need --host 0.0.0.0 (and --config with authorization, see deploy/auth, once it is exposed).`
}

func (c *monitorCmd) examples() []string {
	return []string{
		"hbmesh monitor --embedded                 # server and monitor on 127.0.0.1:4222",
		"hbmesh monitor --embedded --host 0.0.0.0  # ... that nodes on other hosts can reach",
		"hbmesh monitor -s nats://nats:4222 --json | jq -c 'select(.state==\"dead\")'",
		"hbmesh monitor --http 127.0.0.1:8080      # dashboard at http://127.0.0.1:8080/",
		"hbmesh monitor --on-event 'logger -t hbmesh \"$HBMESH_PEER_ID $HBMESH_STATE\"' --on-event-states dead",
		"hbmesh monitor --alertmanager http://am-1:9093 --alertmanager http://am-2:9093 --alert-label cluster=prod --alert-label severity=page",
		"hbmesh monitor --http 127.0.0.1:8080 --metrics-addr 0.0.0.0:9464  # /metrics for Prometheus only",
		"hbmesh monitor --user monitor1 --password ... --inbox-prefix _INBOX_monitor1",
	}
}

func (c *monitorCmd) Run(ctx context.Context, e *env) error {
	if !c.Embedded {
		for _, name := range []string{"port", "host", "config", "store-dir"} {
			if e.given(name) {
				return usagef("%s needs --embedded (--port, --host, --config and --store-dir configure the embedded server)", e.source(name))
			}
		}
	}
	if c.Embedded {
		for _, name := range []string{"server", "context"} {
			if e.onCommandLine(name) {
				return usagef("--%s and %s are exclusive: the embedded monitor connects to its own server", name, e.source("embedded"))
			}
		}
	}
	c.Memory.yieldStateFile(e)
	if err := validateStack(e, c.HTTP, c.Events, c.Memory); err != nil {
		return err
	}
	if err := c.Alert.validate(e, c.Events.Webhook.Webhook != ""); err != nil {
		return err
	}
	if e.given("alert-resend") && len(c.Alert.Alertmanager) == 0 {
		return usagef("%s needs --alertmanager", e.source("alert-resend"))
	}
	webhookHeader, err := headers(e, "webhook-header", c.Events.Webhook.Header)
	if err != nil {
		return err
	}
	alertHeader, err := headers(e, "alert-header", c.Alert.Header)
	if err != nil {
		return err
	}
	if c.Config != "" {
		if err := checkFile(e.source("config"), c.Config); err != nil {
			return err
		}
	}
	c.Conn.jetStream = true // restart memory in KV, --events-stream
	if err := c.Conn.validate(e); err != nil {
		return err
	}
	log := c.Log.logger(e.stderr)
	cfg, err := c.Detection.config(log.With("cmd", "monitor"))
	if err != nil {
		return err
	}
	id := c.ID
	if id == "" {
		host, _ := os.Hostname()
		id = wire.IDFromHostname(host)
	}
	out := &lineWriter{w: e.stdout}
	st := &stack{id: id, http: c.HTTP, events: c.Events, memory: c.Memory, cfg: cfg, remember: true, log: log,
		alert: c.Alert, resend: c.Resend, webhookHeader: webhookHeader, alertHeader: alertHeader}
	if c.JSON {
		st.out = sinks{jsonSink(out)}
	} else {
		st.out = sinks{textSink(out)}
	}
	if err := st.listen(); err != nil {
		return err
	}
	defer st.close()

	if c.Embedded {
		ecfg := embedded.Config{Host: c.Host, Port: c.Port, ConfigFile: c.Config, JetStream: true, StoreDir: c.StoreDir, Logger: c.Log.quiet(log).With("cmd", "server")}
		if c.Config == "" {
			// The file decides the accounts; without one, the mesh gets
			// its own, which sees its DISCONNECT advisories.
			ecfg.MeshAccount = embedded.DefaultMeshAccount
		}
		// A config file decides what the flags do not say explicitly.
		if c.Config != "" && !e.given("host") {
			ecfg.Host = ""
		}
		if c.Config != "" && !e.given("port") {
			ecfg.Port = 0
		}
		if c.StoreDir == "" && c.Config == "" {
			ecfg.StoreDir = defaultStoreDir(c.Port)
		}
		srv, err := embedded.New(ecfg)
		if err != nil {
			return usagef("%v", err)
		}
		if err := srv.Start(); err != nil {
			return err
		}
		defer srv.Shutdown()
		c.Conn.Server = srv.ClientURL()
		log.Info("embedded NATS server ready", "cmd", "monitor", "url", c.Conn.Server, "store_dir", ecfg.StoreDir)
	}

	beats := wire.MustSubjects(cfg.Prefix).Beats()
	c.Conn.refused = func(v string) error {
		if v == subscribeRefused(beats) {
			return refusedf("the server's permissions refuse the monitor its beats (%s): allow %s to subscribe to %s", v, c.Conn.principal(), beats)
		}
		// Without its replies a monitor's probes go unanswered, and
		// every peer it suspects would die.
		return c.Conn.inboxRefused(v)
	}
	cn, err := c.Conn.dial(ctx, "hbmesh monitor "+id, log.With("cmd", "monitor"))
	if err != nil {
		return err
	}
	defer cn.close()
	st.dial = c.Conn.dialCheck(cn.ConnectedUrl(), log.With("cmd", "monitor"))
	return st.run(ctx, cn)
}
