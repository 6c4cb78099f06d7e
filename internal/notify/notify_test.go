package notify_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*notify.Config)
		want string
	}{
		{"no output", func(c *notify.Config) { c.Command = "" }, "no output"},
		{"stream", func(c *notify.Config) { c.Stream = "a.b" }, `Stream "a.b"`},
		{"consumer", func(c *notify.Config) { c.Consumer = "a b" }, `Consumer "a b"`},
		{"webhook", func(c *notify.Config) { c.WebhookURL = "ftp://u:tok@h/tok" }, `WebhookURL: "ftp://h" is not an http or https URL`},
		{"alertmanager", func(c *notify.Config) { c.AlertmanagerURLs = []string{"http://a:9093", "am"} }, "AlertmanagerURLs[1]"},
		{"alertmanager query", func(c *notify.Config) { c.AlertmanagerURLs = []string{"http://a:9093/?k=tok"} }, `AlertmanagerURLs[0]: "http://a:9093": a query or fragment`},
		{"label", func(c *notify.Config) { c.AlertLabels = map[string]string{"peer": "x"} }, `AlertLabels: "peer" is set by hbmesh`},
		{"header", func(c *notify.Config) { c.AlertHeader = map[string][]string{"Authorization: Bearer tok": {"="}} }, `AlertHeader: a header name is not an HTTP field name`},
		{"states without hook", func(c *notify.Config) {
			c.Command, c.WebhookURL, c.States = "", "http://h", []monitor.State{monitor.StateDead}
		}, "States"},
		{"ack wait", func(c *notify.Config) { c.AckWait = time.Millisecond }, "AckWait 1ms"},
		{"max deliver", func(c *notify.Config) { c.MaxDeliver = -1 }, "MaxDeliver -1"},
		{"backoff", func(c *notify.Config) { c.MaxBackoff = time.Millisecond }, "MaxBackoff 1ms"},
		{"hold", func(c *notify.Config) { c.AlertHold = time.Second }, "AlertHold 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := notify.DefaultConfig("EVENTS")
			cfg.Command = "true"
			tc.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "tok") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

// TestHookOnceFromTwoMonitorsAndTwoWorkers: two real monitors report a
// killed node into the stream, two workers share its consumer; the hook
// runs once for the death, and once for every other record.
func TestHookOnceFromTwoMonitorsAndTwoWorkers(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	for _, id := range []string{"mon-a", "mon-b"} {
		p := publisher(t, url, id)
		meshtest.StartMonitor(t, url, id, func(c *monitor.Config) { c.OnEvent = p.Handle })
	}
	cmd, file := logHook(t)
	var ns []*notify.Notifier
	for range 2 {
		ns = append(ns, startNotifier(t, url, func(c *notify.Config) { c.Command = cmd }))
	}
	waitConsumer(t, url, ns[0].ConsumerName(notify.OutputExec), 0)

	kill := meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	natstest.Eventually(t, "the first beat's hook", func() bool { return countFields(lines(t, file), 1, "alive") == 1 })
	kill()
	natstest.Eventually(t, "the death's hook", func() bool { return countFields(lines(t, file), 1, "dead") >= 1 })
	// The node back is the barrier: the stream is in order and each
	// event is handled only after the one before it was settled.
	meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	natstest.Eventually(t, "the recovery's hook", func() bool { return countFields(lines(t, file), 1, "alive") == 2 })

	js := jsFor(t, url)
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitConsumer(t, url, ns[0].ConsumerName(notify.OutputExec), info.State.LastSeq)
	ls := lines(t, file)
	if d := countFields(ls, 1, "dead"); d != 1 {
		t.Fatalf("hook ran %d times for the death:\n%s", d, strings.Join(ls, "\n"))
	}
	ids := map[string]bool{}
	for _, l := range ls {
		ids[strings.Fields(l)[2]] = true
	}
	if uint64(len(ls)) != info.State.Msgs || len(ids) != len(ls) {
		t.Fatalf("%d hook runs, %d distinct events, %d records in the stream:\n%s", len(ls), len(ids), info.State.Msgs, strings.Join(ls, "\n"))
	}
	var sent uint64
	for _, n := range ns {
		sent += n.Stats()[notify.OutputExec].Sent
	}
	if sent != info.State.Msgs {
		t.Errorf("workers count %d sent, want %d", sent, info.State.Msgs)
	}
}

// TestThousandTransitions: 1,000 transitions, each reported by two
// monitors, through two workers: 1,000 hook runs, none twice, none lost,
// shared by both workers.
// Each of 50 peers dies and comes back in turn, so every record is news.
func TestThousandTransitions(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	pa, pb := publisher(t, url, "mon-a"), publisher(t, url, "mon-b")
	file := filepath.Join(t.TempDir(), "ids")
	var ns []*notify.Notifier
	for range 2 {
		ns = append(ns, startNotifier(t, url, func(c *notify.Config) { c.Command = `echo "$HBMESH_EVENT_ID" >> "` + file + `"` }))
	}
	waitConsumer(t, url, ns[0].ConsumerName(notify.OutputExec), 0)
	const n = 1000
	for i := range n {
		ev := deadEvent("web-"+strconv.Itoa(i%50), uint64(i))
		if i/50%2 == 1 {
			ev.State, ev.Prev, ev.Reason = monitor.StateAlive, monitor.StateDead, monitor.ReasonBeat
		}
		pa.Handle(ev)
		pb.Handle(ev)
	}
	natstest.Eventually(t, "both publishers", func() bool { return pa.Stats().Sent == n && pb.Stats().Sent == n })
	if d := pa.Stats().Duplicates + pb.Stats().Duplicates; d != n {
		t.Fatalf("%d duplicates stored by the stream, want %d", d, n)
	}
	// 1,000 processes on a shared machine.
	waitHookRuns(t, file, 2*time.Minute, func(ls []string) bool { return len(ls) >= n })
	waitConsumer(t, url, ns[0].ConsumerName(notify.OutputExec), n)
	ls := lines(t, file)
	seen := map[string]int{}
	for _, l := range ls {
		seen[l]++
	}
	if len(ls) != n || len(seen) != n {
		t.Fatalf("%d hook runs for %d distinct events, want %d of each", len(ls), len(seen), n)
	}
	// Both workers took their share: the consumer is shared, not held by
	// the first one to bind it.
	if a, b := ns[0].Stats()[notify.OutputExec], ns[1].Stats()[notify.OutputExec]; a.Sent+b.Sent != n || a.Sent == 0 || b.Sent == 0 || a.Failed+b.Failed+a.Retries+b.Retries != 0 {
		t.Fatalf("stats %+v and %+v", a, b)
	}
}

// waitHookRuns waits until done holds for the lines of file, or limit
// has passed. It fails once file has not grown for natstest.Timeout while
// done does not hold: the hooks stopped running.
func waitHookRuns(t *testing.T, file string, limit time.Duration, done func([]string) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n, grew := -1, time.Now()
	for {
		ls := lines(t, file)
		switch {
		case done(ls) || time.Now().After(deadline):
			return
		case len(ls) > n:
			n, grew = len(ls), time.Now()
		case time.Since(grew) > natstest.Timeout:
			t.Fatalf("no hook ran for %v; %d so far", natstest.Timeout, n)
		}
		<-tick.C
	}
}

// TestWorkerKilledWhileHandling: a worker process is SIGKILLed while its
// hook runs. The hook dies with it (it never finishes), and the other
// worker handles the event after AckWait: started twice, finished once.
func TestWorkerKilledWhileHandling(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	hook := `echo "start $HBMESH_EVENT_ID $HBMESH_DELIVERY $PPID $$" >> "` + log + `"; sleep 2; echo "done $HBMESH_EVENT_ID $HBMESH_DELIVERY" >> "` + log + `"`
	workers := map[int]*exec.Cmd{}
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"=1", "W_URL="+url, "W_STREAM="+stream, "W_COMMAND="+hook, "W_ACKWAIT=1s")
		var out syncio.Writer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(natstest.Timeout):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("worker %d did not stop on SIGTERM:\n%s", cmd.Process.Pid, out.String())
			}
		})
		workers[cmd.Process.Pid] = cmd
	}
	waitConsumer(t, url, notify.DefaultConsumer+"_"+notify.OutputExec, 0)

	p.Handle(deadEvent("web-1", 7))
	natstest.Eventually(t, "the hook to start", func() bool { return countFields(lines(t, log), 0, "start") == 1 })
	first := strings.Fields(lines(t, log)[0])
	pid, _ := strconv.Atoi(first[3])
	pgid, _ := strconv.Atoi(first[4])
	w, ok := workers[pid]
	if !ok {
		t.Fatalf("hook's parent %d is not a worker: %v", pid, first)
	}
	if err := w.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "the killed worker's hook to die", func() bool { return syscall.Kill(-pgid, 0) != nil })
	// The other worker gets the event after AckWait; its run started
	// after the killed one, with the same sleep, so once it is done the
	// killed run would have written "done" before it, had it survived.
	waitHookRuns(t, log, 2*natstest.Timeout, func(ls []string) bool { return countFields(ls, 0, "done") > 0 })
	waitConsumer(t, url, notify.DefaultConsumer+"_"+notify.OutputExec, 1)
	ls := lines(t, log)
	if len(ls) != 3 || countFields(ls, 0, "start") != 2 || countFields(ls, 0, "done") != 1 ||
		!strings.HasPrefix(ls[2], "done "+first[1]+" 2") {
		t.Fatalf("hook log:\n%s\nwant two starts (deliveries 1 and 2) and one done (delivery 2)", strings.Join(ls, "\n"))
	}
}

// TestRedeliveryAndGivingUp: a hook that fails is run again after a
// backoff until it succeeds (one success, counted once), and one that
// keeps failing is given up after MaxDeliver runs; an event that is not
// hbmesh's is dropped and counted, and the events behind it still flow.
func TestRedeliveryAndGivingUp(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	dir := t.TempDir()
	// Fails twice for web-1, then succeeds; always fails for web-2.
	hook := `f="` + dir + `/$HBMESH_PEER_ID"; echo "$HBMESH_DELIVERY" >> "$f"; [ "$HBMESH_PEER_ID" = web-1 ] && [ "$HBMESH_DELIVERY" -ge 3 ]`
	n := startNotifier(t, url, func(c *notify.Config) { c.Command, c.MaxDeliver = hook, 4 })
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), 0)

	nc := natstest.Connect(t, url)
	if err := nc.Publish("hb.events.dead.junk", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	p.Handle(deadEvent("web-1", 1))
	p.Handle(deadEvent("web-2", 2))
	natstest.Eventually(t, "web-2 given up", func() bool { return n.Stats()[notify.OutputExec].Failed == 1 })
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), 3)
	st := n.Stats()[notify.OutputExec]
	if st.Sent != 1 || st.Failed != 1 || st.Retries != 2+3 || st.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 sent, 1 failed, 5 retries, 1 dropped", st)
	}
	if got := strings.Join(lines(t, filepath.Join(dir, "web-1")), ","); got != "1,2,3" {
		t.Errorf("web-1 deliveries %s", got)
	}
	if got := strings.Join(lines(t, filepath.Join(dir, "web-2")), ","); got != "1,2,3,4" {
		t.Errorf("web-2 deliveries %s", got)
	}
}

// TestShutdownFinishesTheEventInHand: a worker told to stop while its
// hook runs lets the hook finish and acknowledges the event before Run
// returns, so nobody handles it again.
func TestShutdownFinishesTheEventInHand(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	log := filepath.Join(t.TempDir(), "log")
	n, err := notify.New(natstest.Connect(t, url), func() notify.Config {
		cfg := notify.DefaultConfig(stream)
		cfg.Command = `echo start >> "` + log + `"; sleep 1; echo done >> "` + log + `"`
		cfg.AckWait = time.Second
		return cfg
	}())
	if err != nil {
		t.Fatal(err)
	}
	stop := natstest.Run(t, "notifier", n.Run)
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), 0)
	p.Handle(deadEvent("web-1", 1))
	natstest.Eventually(t, "the hook to start", func() bool { return len(lines(t, log)) == 1 })
	stop() // waits for Run to return
	if got := strings.Join(lines(t, log), ","); got != "start,done" {
		t.Fatalf("hook log %q, want the hook finished before Run returned", got)
	}
	if st := n.Stats()[notify.OutputExec]; st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), 1)
}
