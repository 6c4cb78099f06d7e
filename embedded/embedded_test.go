package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const wait = 5 * time.Second

// start starts a server from cfg and shuts it down when the test ends.
func start(t *testing.T, cfg embedded.Config) *embedded.Server {
	t.Helper()
	s, err := embedded.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Shutdown)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func randomPortConfig() embedded.Config {
	cfg := embedded.DefaultConfig()
	cfg.Port = embedded.RandomPort
	return cfg
}

func connect(t *testing.T, s *embedded.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), append(s.ConnectOptions(), opts...)...)
	if err != nil {
		t.Fatalf("connect %q: %v", s.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// roundTrip subscribes on sub, waits until pubServer (the server pub is
// connected to) knows of the subscription, publishes on pub and waits for
// the message. Interest crosses cluster routes asynchronously.
func roundTrip(t *testing.T, sub, pub *nats.Conn, pubServer *embedded.Server, subject string) {
	t.Helper()
	ch := make(chan *nats.Msg, 1)
	s, err := sub.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatalf("subscribe %q: %v", subject, err)
	}
	defer s.Unsubscribe()
	if err := sub.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	natstest.WaitInterest(t, pubServer, subject)
	if err := pub.Publish(subject, []byte("ping")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	select {
	case m := <-ch:
		if string(m.Data) != "ping" {
			t.Fatalf("got %q, want ping", m.Data)
		}
	case <-time.After(wait):
		t.Fatalf("no message on %q after %s", subject, wait)
	}
}

func TestStartRandomPortRoundTripAndShutdown(t *testing.T) {
	s := start(t, randomPortConfig())
	url := s.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<random>", url)
	}
	if s.ConnectOptions() != nil {
		t.Fatalf("ConnectOptions for a listening server = %v, want nil", s.ConnectOptions())
	}
	if s.ClusterURL() != "" || s.MonitorURL() != "" || s.StoreDir() != "" {
		t.Fatalf("ClusterURL/MonitorURL/StoreDir = %q/%q/%q, want all empty", s.ClusterURL(), s.MonitorURL(), s.StoreDir())
	}
	if name := s.NATS().Name(); !strings.HasPrefix(name, "hbmesh-") {
		t.Fatalf("server name = %q, want hbmesh-*", name)
	}
	nc := connect(t, s)
	roundTrip(t, nc, nc, s, "hbmesh.test")

	done := make(chan struct{})
	go func() { s.Shutdown(); close(done) }()
	s.Shutdown() // concurrent second call waits for the first
	<-done
	s.Shutdown() // and later calls return at once

	if _, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		t.Fatalf("connect to %q after Shutdown succeeded", url)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestStartTwice(t *testing.T) {
	s := start(t, randomPortConfig())
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second Start = %v, want already started", err)
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	s, err := embedded.New(embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	if s.NATS() != nil || s.ClientURL() != "" {
		t.Fatal("unstarted server has a NATS server or URL")
	}
}

func TestPortInUseFailsFast(t *testing.T) {
	first := start(t, randomPortConfig())
	cfg := embedded.DefaultConfig()
	cfg.Port = first.NATS().Addr().(*net.TCPAddr).Port
	cfg.ReadyTimeout = time.Minute // the error must come from the bind, not the timeout
	s, err := embedded.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	began := time.Now()
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Start on a used port = %v, want address already in use, matching syscall.EADDRINUSE", err)
	}
	if d := time.Since(began); d > wait {
		t.Fatalf("Start took %s to fail, want fail fast", d)
	}
}

// TestFailedStartLeavesNoStoreDir: nats-server creates a named store dir
// before it binds its port, so a start on a busy port would leave an
// empty directory tree behind unless Start removed it. Only what the
// failed start made goes; a store dir that already held data is kept.
func TestFailedStartLeavesNoStoreDir(t *testing.T) {
	first := start(t, randomPortConfig())
	busy := first.NATS().Addr().(*net.TCPAddr).Port
	try := func(storeDir string) {
		t.Helper()
		cfg := embedded.DefaultConfig()
		cfg.Port, cfg.JetStream, cfg.StoreDir = busy, true, storeDir
		s, err := embedded.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		if err := s.Start(); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Start on a used port = %v, want EADDRINUSE", err)
		}
	}
	root := t.TempDir()
	try(filepath.Join(root, "cache", "hbmesh", "jetstream"))
	if _, err := os.Stat(filepath.Join(root, "cache")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed start left %s: stat err = %v", filepath.Join(root, "cache"), err)
	}
	kept := filepath.Join(root, "kept")
	if err := os.MkdirAll(filepath.Join(kept, "jetstream"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kept, "jetstream", "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	try(kept)
	if _, err := os.Stat(filepath.Join(kept, "jetstream", "data")); err != nil {
		t.Fatalf("a failed start touched an existing store: %v", err)
	}
}

func TestDontListen(t *testing.T) {
	cfg := embedded.DefaultConfig()
	cfg.DontListen = true
	s := start(t, cfg)
	if s.ClientURL() != "" {
		t.Fatalf("ClientURL = %q, want empty", s.ClientURL())
	}
	if len(s.ConnectOptions()) != 1 {
		t.Fatalf("ConnectOptions = %v, want one in-process option", s.ConnectOptions())
	}
	a, b := connect(t, s), connect(t, s)
	roundTrip(t, a, b, s, "hbmesh.inproc")
}

func TestJetStreamTempStoreDir(t *testing.T) {
	cfg := randomPortConfig()
	cfg.JetStream = true
	s := start(t, cfg)
	dir := s.StoreDir()
	if dir == "" {
		t.Fatal("StoreDir is empty with JetStream on")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("store dir: %v", err)
	}
	js, err := jetstream.New(connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("AccountInfo: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	s.Shutdown()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("store dir %s after Shutdown: stat err = %v, want not exist", dir, err)
	}
}

func TestJetStreamExplicitStoreDirKept(t *testing.T) {
	dir := t.TempDir()
	cfg := randomPortConfig()
	cfg.JetStream = true
	cfg.StoreDir = dir
	s := start(t, cfg)
	if s.StoreDir() != dir {
		t.Fatalf("StoreDir = %q, want %q", s.StoreDir(), dir)
	}
	s.Shutdown()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("caller's store dir removed: %v", err)
	}
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nats.conf")
	conf := `
server_name: fromfile
port: 4999
authorization {
  user: alice
  password: s3cret
}
`
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// Port overrides the file's 4999; everything else comes from the file.
	s := start(t, embedded.Config{ConfigFile: path, Port: embedded.RandomPort})
	if got := s.NATS().Name(); got != "fromfile" {
		t.Fatalf("server name = %q, want fromfile", got)
	}
	if strings.HasSuffix(s.ClientURL(), ":4999") {
		t.Fatalf("ClientURL = %q: Config.Port did not override the file", s.ClientURL())
	}
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want default host 127.0.0.1", s.ClientURL())
	}

	_, err := nats.Connect(s.ClientURL())
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unauthenticated connect: err = %v, want %v", err, nats.ErrAuthorization)
	}
	nc := connect(t, s, nats.UserInfo("alice", "s3cret"))
	roundTrip(t, nc, nc, s, "hbmesh.auth")
}

func TestConfigFileErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("port: {{{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.conf"), bad} {
		s, err := embedded.New(embedded.Config{ConfigFile: path})
		if err != nil {
			t.Fatalf("New must not read the file, got %v", err)
		}
		err = s.Start()
		want := `embedded: load config "` + path + `"`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Start = %v, want %s", err, want)
		}
		s.Shutdown()
	}
}

func TestOptionsHook(t *testing.T) {
	cfg := randomPortConfig()
	cfg.Options = func(o *server.Options) { o.ServerName = "hooked" }
	cfg.Name = "overridden-by-hook"
	s := start(t, cfg)
	if got := s.NATS().Name(); got != "hooked" {
		t.Fatalf("server name = %q, want hooked", got)
	}
}

func TestLoggerBridge(t *testing.T) {
	var buf syncio.Writer
	cfg := randomPortConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start(t, cfg).Shutdown()
	out := buf.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "Server is ready") {
		t.Fatalf("log output lacks the INFO readiness notice:\n%s", out)
	}
	if strings.Contains(out, "level=DEBUG") {
		t.Fatalf("debug lines logged at Info level:\n%s", out)
	}
}

func TestMonitorRandomPort(t *testing.T) {
	cfg := randomPortConfig()
	cfg.HTTPPort = embedded.RandomPort
	s := start(t, cfg)
	u := s.MonitorURL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("MonitorURL = %q", u)
	}
	client := &http.Client{Timeout: wait}
	resp, err := client.Get(u + "/varz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/varz status %d", resp.StatusCode)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*embedded.Config)
		want string // "" means valid
	}{
		{"default", func(*embedded.Config) {}, ""},
		{"zero value", func(c *embedded.Config) { *c = embedded.Config{} }, ""},
		{"random ports", func(c *embedded.Config) {
			c.Port, c.HTTPPort = embedded.RandomPort, embedded.RandomPort
			c.Cluster = embedded.ClusterConfig{Name: "c", Port: embedded.RandomPort}
		}, ""},
		{"routes", func(c *embedded.Config) {
			c.Cluster = embedded.ClusterConfig{Name: "c", Routes: []string{"nats-route://10.0.0.1:6222", "nats://h:1"}}
		}, ""},
		{"port high", func(c *embedded.Config) { c.Port = 70000 }, "invalid embedded config: Port 70000 is out of range"},
		{"port low", func(c *embedded.Config) { c.Port = -2 }, "invalid embedded config: Port -2 is out of range"},
		{"http port", func(c *embedded.Config) { c.HTTPPort = 65536 }, "invalid embedded config: HTTPPort 65536 is out of range"},
		{"cluster port", func(c *embedded.Config) {
			c.Cluster = embedded.ClusterConfig{Name: "c", Port: 1 << 20}
		}, "invalid embedded config: Cluster.Port 1048576 is out of range"},
		{"name space", func(c *embedded.Config) { c.Name = "a b" }, `invalid embedded config: Name "a b" must not contain whitespace`},
		{"ready timeout", func(c *embedded.Config) { c.ReadyTimeout = -time.Second }, "invalid embedded config: ReadyTimeout -1s must not be negative"},
		{"dont listen cluster", func(c *embedded.Config) {
			c.DontListen = true
			c.Cluster.Name = "c"
		}, `invalid embedded config: DontListen with Cluster "c": a clustered server needs a client listener`},
		{"cluster without name", func(c *embedded.Config) { c.Cluster.Port = 6222 }, "invalid embedded config: Cluster.Name is empty"},
		{"route scheme", func(c *embedded.Config) {
			c.Cluster = embedded.ClusterConfig{Name: "c", Routes: []string{"http://h:1"}}
		}, `invalid embedded config: Cluster.Routes[0] "http://h:1": scheme "http"`},
		{"route no port", func(c *embedded.Config) {
			c.Cluster = embedded.ClusterConfig{Name: "c", Routes: []string{"nats-route://a:1", "nats-route://h"}}
		}, `invalid embedded config: Cluster.Routes[1] "nats-route://h": want nats-route://host:port`},
		{"mesh account", func(c *embedded.Config) { c.MeshAccount = embedded.DefaultMeshAccount }, ""},
		{"mesh account name", func(c *embedded.Config) { c.MeshAccount = "a b" }, `invalid embedded config: MeshAccount "a b" may hold only letters`},
		{"mesh account reserved", func(c *embedded.Config) { c.MeshAccount = embedded.SystemAccount }, `invalid embedded config: MeshAccount "SYS" is reserved`},
		{"mesh account and file", func(c *embedded.Config) {
			c.MeshAccount, c.ConfigFile = "M", "x.conf"
		}, `invalid embedded config: MeshAccount "M" with ConfigFile "x.conf": the file decides the accounts`},
		{"route bad port", func(c *embedded.Config) {
			c.Cluster = embedded.ClusterConfig{Name: "c", Routes: []string{"nats-route://h:0"}}
		}, `invalid embedded config: Cluster.Routes[0] "nats-route://h:0": port "0" out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := embedded.DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			_, newErr := embedded.New(cfg)
			if tt.want == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v, want nil", err, newErr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			if !errors.Is(err, embedded.ErrInvalidConfig) {
				t.Fatalf("Validate error %v does not wrap ErrInvalidConfig", err)
			}
			if newErr == nil || newErr.Error() != err.Error() {
				t.Fatalf("New = %v, want the Validate error", newErr)
			}
		})
	}
}

func TestCluster(t *testing.T) {
	servers := make([]*embedded.Server, 3)
	for i := range servers {
		cfg := randomPortConfig()
		cfg.Name = fmt.Sprintf("c%d", i)
		cfg.Cluster = embedded.ClusterConfig{Name: "hbmesh-test", Port: embedded.RandomPort}
		if i > 0 {
			cfg.Cluster.Routes = []string{servers[0].ClusterURL()}
		}
		servers[i] = start(t, cfg)
		if u := servers[i].ClusterURL(); !strings.HasPrefix(u, "nats-route://127.0.0.1:") {
			t.Fatalf("ClusterURL = %q", u)
		}
	}
	for i, s := range servers {
		if err := s.WaitRoutes(2, wait); err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
	}

	sub, pub := connect(t, servers[0]), connect(t, servers[2])
	ch := make(chan *nats.Msg, 1)
	if _, err := sub.ChanSubscribe("hbmesh.cluster", ch); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	natstest.WaitInterest(t, servers[2], "hbmesh.cluster")
	if err := pub.Publish("hbmesh.cluster", []byte("across")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if string(m.Data) != "across" {
			t.Fatalf("got %q", m.Data)
		}
	case <-time.After(wait):
		t.Fatal("message published on server 2 never reached server 0")
	}

	servers[1].Shutdown()
	for _, i := range []int{0, 2} {
		if err := waitPeers(servers[i], 1); err != nil {
			t.Fatalf("server %d after server 1 left: %v", i, err)
		}
	}
	roundTrip(t, sub, pub, servers[2], "hbmesh.cluster.after")
}

// waitPeers waits until s is routed to exactly n peers: after a server
// leaves, its peers drop it asynchronously.
func waitPeers(s *embedded.Server, n int) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if s.NATS().NumRemotes() == n {
			return nil
		}
		<-tick.C
	}
	return fmt.Errorf("routed to %d peers after %s, want %d", s.NATS().NumRemotes(), wait, n)
}
