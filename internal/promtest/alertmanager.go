package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
)

// Receiver is a webhook receiver for Alertmanager's notifications: a real
// HTTP server that records each one.
type Receiver struct {
	*httptest.Server
	ch chan events.Payload

	mu  sync.Mutex
	all []events.Payload
}

// NewReceiver starts a receiver, closed when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{ch: make(chan events.Payload, 1024)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p events.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("promtest: notification is not webhook JSON: %v: %s", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.all = append(r.all, p)
		r.mu.Unlock()
		r.ch <- p
	}))
	t.Cleanup(r.Close)
	return r
}

// Next returns the next notification, failing the test if none arrives
// within natstest.Timeout.
func (r *Receiver) Next(t testing.TB) events.Payload {
	t.Helper()
	select {
	case p := <-r.ch:
		return p
	case <-time.After(natstest.Timeout):
		t.Fatalf("promtest: no notification within %v", natstest.Timeout)
		return events.Payload{}
	}
}

// All returns every notification received so far, in order.
func (r *Receiver) All() []events.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Payload(nil), r.all...)
}

// Config is the part of Alertmanager's configuration a test chooses.
type Config struct {
	// GroupWait, GroupInterval and RepeatInterval are the route's.
	// Defaults 200ms, 500ms and 1h: quick, and never repeating within a
	// test.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// File, when set, is a configuration file to run instead: the
	// receiver and the durations above are then unused.
	File string
}

// Alertmanager is a running Alertmanager process.
type Alertmanager struct {
	t       testing.TB
	bin     string
	addr    string
	cfgFile string
	dir     string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	log     *syncio.Writer
	storage string // the running one's --storage.path
}

// Start runs an Alertmanager on a free loopback port, routing every
// alert, grouped by all its labels, to the receiver r with
// send_resolved (or as cfg.File says), and waits until it is ready. It
// stops when the test ends.
func Start(t testing.TB, r *Receiver, cfg Config) *Alertmanager {
	t.Helper()
	bin := natstest.SystemTool(t, "prometheus-alertmanager", "ALERTMANAGER_PATH", "prometheus-alertmanager", "alertmanager")
	if cfg.GroupWait == 0 {
		cfg.GroupWait = 200 * time.Millisecond
	}
	if cfg.GroupInterval == 0 {
		cfg.GroupInterval = 500 * time.Millisecond
	}
	if cfg.RepeatInterval == 0 {
		cfg.RepeatInterval = time.Hour
	}
	dir := t.TempDir()
	am := &Alertmanager{t: t, bin: bin, addr: freeAddr(t), cfgFile: cfg.File, dir: dir}
	if am.cfgFile == "" {
		am.cfgFile = filepath.Join(dir, "alertmanager.yml")
		// group_by '...' makes every distinct label set a group of its
		// own, so two label sets for one death would be two
		// notifications.
		yml := fmt.Sprintf(`route:
  receiver: test
  group_by: ['...']
  group_wait: %s
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: test
    webhook_configs:
      - url: %s/
        send_resolved: true
`, promDuration(cfg.GroupWait), promDuration(cfg.GroupInterval), promDuration(cfg.RepeatInterval), r.URL)
		if err := os.WriteFile(am.cfgFile, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	am.start(filepath.Join(dir, "data-0"))
	t.Cleanup(am.stop)
	return am
}

// URL is the Alertmanager's base URL.
func (am *Alertmanager) URL() string { return "http://" + am.addr }

// Restart stops the Alertmanager and starts it again on the same address
// with an empty storage directory: it has lost every alert and its
// notification log, as one whose disk was wiped.
func (am *Alertmanager) Restart(t testing.TB) {
	t.Helper()
	am.stop()
	am.start(filepath.Join(am.dir, fmt.Sprintf("data-%d", time.Now().UnixNano())))
}

// Stop stops the Alertmanager (SIGTERM, so it saves its notification
// log); its address then refuses connections until [Alertmanager.Resume].
func (am *Alertmanager) Stop() { am.stop() }

// Resume starts a stopped Alertmanager again on the same address and
// storage directory: as after an ordinary restart, it remembers the
// notifications it sent (Alertmanager keeps no alerts across restarts).
func (am *Alertmanager) Resume(t testing.TB) {
	t.Helper()
	am.start(am.storage)
}

func (am *Alertmanager) start(storage string) {
	t := am.t
	t.Helper()
	log := &syncio.Writer{}
	cmd := exec.Command(am.bin,
		"--config.file="+am.cfgFile,
		"--storage.path="+storage,
		"--web.listen-address="+am.addr,
		"--cluster.listen-address=", // no clustering, no gossip port
		"--log.level=info",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("promtest: start %s: %v", am.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	am.mu.Lock()
	am.cmd, am.done, am.log, am.storage = cmd, done, log, storage
	am.mu.Unlock()

	ready := func() bool {
		select {
		case <-done:
			t.Fatalf("promtest: alertmanager exited:\n%s", log.String())
		default:
		}
		resp, err := http.Get(am.URL() + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	natstest.Eventually(t, "alertmanager ready", ready)
}

func (am *Alertmanager) stop() {
	am.mu.Lock()
	cmd, done := am.cmd, am.done
	am.cmd = nil
	am.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(natstest.Timeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// NotificationLogged waits until the Alertmanager has read its
// notification log once more than it had by now. With one alert group,
// that is its next flush, which starts only once the flush before it has
// logged the notification it sent: call it after the receiver got a
// notification, before stopping the Alertmanager, so that the restarted
// one remembers it.
func (am *Alertmanager) NotificationLogged(t testing.TB) {
	t.Helper()
	const metric = "alertmanager_nflog_queries_total "
	queries := func() string {
		resp, err := http.Get(am.URL() + "/metrics")
		if err != nil {
			t.Fatalf("promtest: metrics: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, metric); ok {
				return v
			}
		}
		t.Fatalf("promtest: no %s in /metrics", metric)
		return ""
	}
	before := queries()
	natstest.Eventually(t, "alertmanager's next flush", func() bool { return queries() != before })
}

// Log returns what the running Alertmanager has logged.
func (am *Alertmanager) Log() string {
	am.mu.Lock()
	defer am.mu.Unlock()
	return am.log.String()
}

// Alert is an alert as Alertmanager's API v2 lists it.
type Alert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt"`
	Status   struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// Alerts returns the Alertmanager's active alerts (GET /api/v2/alerts).
func (am *Alertmanager) Alerts(t testing.TB) []Alert {
	t.Helper()
	return am.list(t, "?active=true&silenced=false&inhibited=false")
}

// AllAlerts returns every alert the Alertmanager holds, inhibited and
// silenced ones included, each with its status.
func (am *Alertmanager) AllAlerts(t testing.TB) []Alert {
	t.Helper()
	return am.list(t, "")
}

// Post posts alerts to the Alertmanager's API v2, as Prometheus does.
func (am *Alertmanager) Post(t testing.TB, alerts []events.PostableAlert) {
	t.Helper()
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(am.URL()+events.AlertmanagerPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("promtest: post alerts: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("promtest: post alerts: %s: %s", resp.Status, b)
	}
}

func (am *Alertmanager) list(t testing.TB, query string) []Alert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), natstest.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, am.URL()+"/api/v2/alerts"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("promtest: list alerts: %v", err)
	}
	defer resp.Body.Close()
	var as []Alert
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatalf("promtest: list alerts: %v", err)
	}
	return as
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promDuration formats d as Prometheus's duration syntax, e.g. 200ms, 1h.
func promDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
