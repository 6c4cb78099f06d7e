package notify_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/monitor"
)

// The test binary doubles as a notify worker process when
// HBMESH_NOTIFY_WORKER is set, so a test can SIGKILL a worker.
const workerEnv = "HBMESH_NOTIFY_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(worker())
	}
	goleak.VerifyTestMain(m)
}

// worker runs one Notifier from the environment until SIGTERM.
func worker() int {
	nc, err := nats.Connect(os.Getenv("W_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer nc.Close()
	cfg := notify.DefaultConfig(os.Getenv("W_STREAM"))
	cfg.Command = os.Getenv("W_COMMAND")
	cfg.AckWait, _ = time.ParseDuration(os.Getenv("W_ACKWAIT"))
	n, err := notify.New(nc, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := n.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

const stream = "EVENTS"

// startJS starts a real nats-server with JetStream.
func startJS(t *testing.T) *embedded.Server {
	t.Helper()
	return natstest.Start(t, func(c *embedded.Config) {
		c.JetStream = true
		c.StoreDir = t.TempDir()
	})
}

// publisher runs an event publisher into the stream, as a monitor with
// --events-stream does, and waits until the stream exists.
func publisher(t *testing.T, url, monitorID string) *events.NATSPublisher {
	t.Helper()
	cfg := events.DefaultNATSConfig()
	cfg.MonitorID, cfg.Stream = monitorID, stream
	p, err := events.NewNATSPublisher(natstest.Connect(t, url), cfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "publisher "+monitorID, p.Run)
	js := jsFor(t, url)
	natstest.Eventually(t, "the stream", func() bool {
		_, err := js.Stream(context.Background(), stream)
		return err == nil
	})
	return p
}

func jsFor(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// startNotifier runs a Notifier in this process until the test ends.
func startNotifier(t *testing.T, url string, mod func(*notify.Config)) *notify.Notifier {
	t.Helper()
	cfg := notify.DefaultConfig(stream)
	cfg.AckWait = time.Second
	cfg.InitialBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	mod(&cfg)
	n, err := notify.New(natstest.Connect(t, url), cfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "notifier", n.Run)
	return n
}

// waitConsumer waits until consumer exists and has nothing pending or in
// hand: every event so far was settled.
func waitConsumer(t *testing.T, url, consumer string, delivered uint64) {
	t.Helper()
	js := jsFor(t, url)
	natstest.Eventually(t, "consumer "+consumer+" to settle", func() bool {
		c, err := js.Consumer(context.Background(), stream, consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= delivered
	})
}

// lines returns the lines of file, none if it does not exist.
func lines(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// logHook is a hook command appending "<id> <state> <event id> <monitor>"
// to a file it returns.
func logHook(t *testing.T) (cmd, file string) {
	file = filepath.Join(t.TempDir(), "hook.log")
	return `echo "$HBMESH_PEER_ID $HBMESH_STATE $HBMESH_EVENT_ID $HBMESH_MONITOR" >> "` + file + `"`, file
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// deadEvent is peer id's death, its seq making it a transition of its own.
func deadEvent(id string, seq uint64) monitor.Event {
	return monitor.Event{Time: t0.Add(time.Duration(seq) * time.Millisecond), ID: id, Host: id + ".example",
		State: monitor.StateDead, Prev: monitor.StateSuspect, Reason: monitor.ReasonTimeout,
		Boot: "boot-" + id, Seq: seq, Interval: time.Second}
}

// countFields counts the lines whose fields[i] equals v.
func countFields(ls []string, i int, v string) int {
	n := 0
	for _, l := range ls {
		if f := strings.Fields(l); len(f) > i && f[i] == v {
			n++
		}
	}
	return n
}
