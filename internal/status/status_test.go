package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
)

// mesh is two monitors, mon-a and mon-b, and two nodes on one server.
// mon-b is patient: it suspects a silent peer only after 50 intervals (5s)
// where mon-a convicts after 3 (300ms), so killing a node makes them
// disagree for seconds, long enough to be asserted without racing.
type mesh struct {
	client     *nats.Conn
	monA, monB *monitor.Monitor
	killWeb2   func()
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	srv := natstest.Start(t)
	url := srv.ClientURL()
	ms := &mesh{}
	ms.monA, _ = meshtest.StartMonitor(t, url, "mon-a")
	ms.monB, _ = meshtest.StartMonitor(t, url, "mon-b", func(c *monitor.Config) { c.SuspectAfter, c.DeadAfter = 50, 100 })
	meshtest.StartNode(t, url, "web-1", fast)
	ms.killWeb2 = meshtest.StartNode(t, url, "web-2", fast)
	for _, m := range []*monitor.Monitor{ms.monA, ms.monB} {
		for _, id := range []string{"web-1", "web-2"} {
			natstest.Eventually(t, m.ID()+" sees "+id+" alive", func() bool {
				p, ok := m.Peer(id)
				return ok && p.State == monitor.StateAlive
			})
		}
	}
	ms.client = natstest.Connect(t, url)
	return ms
}

func gather(t *testing.T, nc *nats.Conn) *status.Report {
	t.Helper()
	r, err := status.Gather(context.Background(), nc, status.Options{Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGatherFindsEveryMonitorAndPeer(t *testing.T) {
	ms := startMesh(t)
	start := time.Now()
	r := gather(t, ms.client)
	// Both monitors answer within milliseconds; Gather must stop after the
	// quiet period rather than sit out the whole wait.
	if took := time.Since(start); took >= time.Second {
		t.Errorf("Gather took %v, the whole wait", took)
	}
	if r.Type != status.ReportType || r.Subject != "hb.monitor.v1.peers" {
		t.Errorf("report header = %q %q", r.Type, r.Subject)
	}
	if len(r.Monitors) != 2 || r.Monitors[0].ID != "mon-a" || r.Monitors[1].ID != "mon-b" {
		t.Fatalf("monitors = %+v", r.Monitors)
	}
	for _, m := range r.Monitors {
		// A plain server publishes no disconnect advisories: the
		// monitors say the crash fast path is off.
		if !m.Status || !m.Ready || !m.PeersAnswered || !m.Connected || m.Peers != 2 || m.Version != "v1.2.3" || m.Instances != 1 || m.Instance == "" || m.FastPath {
			t.Errorf("monitor = %+v", m)
		}
	}
	if len(r.Peers) != 2 || r.Peers[0].ID != "web-1" || r.Peers[1].ID != "web-2" {
		t.Fatalf("peers = %+v", r.Peers)
	}
	for _, p := range r.Peers {
		if p.Disagree || p.State != "alive" || p.States["mon-a"] != "alive" || p.States["mon-b"] != "alive" ||
			p.Host != p.ID+".example" || p.Seq == 0 || p.Version != "1.0.0" {
			t.Errorf("peer = %+v", p)
		}
	}
	if r.Disagreements() != 0 || len(r.Warnings) != 0 {
		t.Errorf("disagreements = %d, warnings %q", r.Disagreements(), r.Warnings)
	}
}

func TestMonitorsDisagree(t *testing.T) {
	ms := startMesh(t)
	ms.killWeb2()
	natstest.Eventually(t, "mon-a convicts web-2", func() bool {
		p, _ := ms.monA.Peer("web-2")
		return p.State == monitor.StateDead
	})
	r := gather(t, ms.client)
	if p, _ := ms.monB.Peer("web-2"); p.State != monitor.StateAlive {
		t.Fatalf("mon-b already says %v; the test relies on its patience", p.State)
	}

	if len(r.Peers) != 2 || r.Disagreements() != 1 {
		t.Fatalf("peers = %+v", r.Peers)
	}
	split := r.Peers[0] // worst first: web-2 is dead somewhere
	if split.ID != "web-2" || !split.Disagree || split.State != status.StateSplit || split.Worst != monitor.StateDead ||
		split.States["mon-a"] != "dead" || split.States["mon-b"] != "alive" {
		t.Errorf("web-2 = %+v", split)
	}

	var out bytes.Buffer
	if err := status.Render(&out, r); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	lines := strings.Split(out.String(), "\n")
	if !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "mon-a  mon-b") {
		t.Errorf("header = %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "web-2 ") || !strings.Contains(lines[1], " SPLIT ") ||
		!strings.Contains(lines[1], "! mon-a=dead mon-b=alive") || !strings.HasSuffix(lines[1], "D      A") {
		t.Errorf("web-2 row = %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "web-1 ") || strings.Contains(lines[2], "!") {
		t.Errorf("web-1 row = %q", lines[2])
	}
	if !strings.Contains(out.String(), "monitors disagree on 1") || !strings.Contains(out.String(), "mon-b  ready, crash fast path off") {
		t.Errorf("footer missing:\n%s", out.String())
	}

	out.Reset()
	if err := status.RenderJSON(&out, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Type     string `json:"type"`
		Monitors []struct {
			ID    string `json:"id"`
			Ready bool   `json:"ready"`
		} `json:"monitors"`
		Peers []struct {
			ID       string            `json:"id"`
			State    string            `json:"state"`
			Disagree bool              `json:"disagree"`
			States   map[string]string `json:"states"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("RenderJSON: %v\n%s", err, out.String())
	}
	if doc.Type != status.ReportType || len(doc.Monitors) != 2 || !doc.Monitors[0].Ready || len(doc.Peers) != 2 ||
		doc.Peers[0].State != "split" || !doc.Peers[0].Disagree || doc.Peers[0].States["mon-a"] != "dead" || doc.Peers[1].Disagree {
		t.Errorf("JSON = %s", out.String())
	}
}

func TestNoMonitors(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	start := time.Now()
	_, err := status.Gather(context.Background(), nc, status.Options{Wait: time.Second})
	// With no subscriber the server says so at once, and so do we: not
	// "within 1s", which would be a lie 17ms later.
	if !errors.Is(err, status.ErrNoMonitors) || err.Error() != "no monitor is subscribed on hb.monitor.v1.peers (wrong --prefix?)" {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took >= time.Second {
		t.Errorf("took %v", took)
	}
}

func TestNoMonitorsAnswer(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	// Something subscribes but never answers: the wait is sat out.
	if _, err := nc.Subscribe("hb.monitor.v1.*", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_, err := status.Gather(context.Background(), nc, status.Options{Wait: 50 * time.Millisecond})
	if !errors.Is(err, status.ErrNoMonitors) || err.Error() != "no monitors answered on hb.monitor.v1.peers within 50ms" {
		t.Fatalf("err = %v", err)
	}
}

// disconnected returns a client whose server has gone, so it is
// reconnecting, with a monitor having been there: only the connection
// can be blamed for the silence.
func disconnected(t *testing.T) *nats.Conn {
	t.Helper()
	srv := natstest.Start(t)
	meshtest.StartMonitor(t, srv.ClientURL(), "mon-a")
	nc := natstest.Connect(t, srv.ClientURL())
	srv.Shutdown()
	natstest.Eventually(t, "client reconnecting", nc.IsReconnecting)
	return nc
}

func TestGatherNotConnected(t *testing.T) {
	nc := disconnected(t)
	start := time.Now()
	_, err := status.Gather(context.Background(), nc, status.Options{Wait: time.Second})
	if !errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, status.ErrNoMonitors) ||
		err.Error() != "not connected to NATS; reconnecting" {
		t.Errorf("err = %v", err)
	}
	if took := time.Since(start); took >= time.Second {
		t.Errorf("took %v, waiting for answers that cannot come", took)
	}
	nc.Close()
	if _, err := status.Gather(context.Background(), nc, status.Options{Wait: time.Second}); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("closed: err = %v", err)
	}
}

func TestWatchNotConnected(t *testing.T) {
	nc := disconnected(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	out := &frames{enough: 2, cancel: cancel}
	if err := status.Run(ctx, nc, status.Options{Watch: true, Interval: 20 * time.Millisecond}, out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Count(got, "not connected to NATS; reconnecting\n") != 2 || strings.Contains(got, "no monitors") {
		t.Errorf("frames:\n%s", got)
	}
}

func TestGatherHonoursContext(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	// A subscriber that never answers keeps the server from replying
	// "no responders", so only ctx can end the wait early.
	if _, err := nc.Subscribe("hb.monitor.v1.*", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := status.Gather(ctx, nc, status.Options{Wait: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// frames counts the frames Watch writes and cancels the watch after
// enough of them, so the test ends on an event rather than a timer.
type frames struct {
	bytes.Buffer
	n      int
	enough int
	cancel context.CancelFunc
}

func (f *frames) Write(p []byte) (int, error) {
	f.n++
	if f.n >= f.enough {
		f.cancel()
	}
	return f.Buffer.Write(p)
}

func TestWatch(t *testing.T) {
	ms := startMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	out := &frames{enough: 3, cancel: cancel}
	if err := status.Run(ctx, ms.client, status.Options{Watch: true, Interval: 20 * time.Millisecond}, out); err != nil {
		t.Fatal(err)
	}
	if out.n < 3 {
		t.Fatalf("%d frames before the deadline", out.n)
	}
	got := out.String()
	// Each frame says when it was asked, so a frozen view shows it.
	header := regexp.MustCompile(`(?m)^as of \d\d:\d\d:\d\d, every 20ms\n\nID `)
	if !header.MatchString(got[:min(len(got), 40)]) || len(header.FindAllString(got, -1)) != out.n ||
		strings.Count(got, "\n\nas of ") != out.n-1 || strings.Count(got, "\nID ") != out.n {
		t.Errorf("want %d timed tables separated by blank lines, got:\n%s", out.n, got)
	}
	if strings.Contains(got, "\x1b[") {
		t.Error("cleared the screen of a non-terminal")
	}
}

// jsonLines checks that out is one JSON report per line, nothing else,
// and returns them.
func jsonLines(t *testing.T, out string) []status.Report {
	t.Helper()
	var docs []status.Report
	for i, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			break // after the last newline
		}
		var r status.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Type != status.ReportType || r.Time.IsZero() {
			t.Errorf("line %d is not a report (%v): %q", i+1, err, line)
		}
		docs = append(docs, r)
	}
	return docs
}

func TestWatchJSONNotConnected(t *testing.T) {
	nc := disconnected(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	out := &frames{enough: 2, cancel: cancel}
	if err := status.Run(ctx, nc, status.Options{Watch: true, JSON: true, Interval: 20 * time.Millisecond}, out); err != nil {
		t.Fatal(err)
	}
	docs := jsonLines(t, out.String())
	if len(docs) != 2 || docs[1].Error != "not connected to NATS; reconnecting" || docs[1].Subject != "hb.monitor.v1.peers" {
		t.Errorf("docs = %+v", docs)
	}
}

func TestRun(t *testing.T) {
	ms := startMesh(t)
	run := func(ctx context.Context, o status.Options) (string, error) {
		var stdout bytes.Buffer
		err := status.Run(ctx, ms.client, o, &stdout)
		return stdout.String(), err
	}
	t.Run("table", func(t *testing.T) {
		out, err := run(context.Background(), status.Options{})
		if err != nil || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "web-2") {
			t.Errorf("err %v, out:\n%s", err, out)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, err := run(context.Background(), status.Options{JSON: true, Wait: 500 * time.Millisecond})
		var r status.Report
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Monitors) != 2 {
			t.Errorf("err %v, out:\n%s", err, out)
		}
	})
	t.Run("watch json", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		out, err := run(ctx, status.Options{Watch: true, JSON: true, Interval: 50 * time.Millisecond, Wait: 200 * time.Millisecond})
		// One line per round, no blank lines between them: docs promise
		// JSON lines.
		docs := jsonLines(t, out)
		if err != nil || len(docs) < 2 || len(docs[0].Monitors) != 2 {
			t.Errorf("err %v, %d documents:\n%s", err, len(docs), out)
		}
	})
	t.Run("other prefix", func(t *testing.T) {
		_, err := run(context.Background(), status.Options{Prefix: "other", Wait: 100 * time.Millisecond})
		if !errors.Is(err, status.ErrNoMonitors) || !strings.Contains(err.Error(), "no monitor is subscribed on other.monitor.v1.peers (wrong --prefix?)") {
			t.Errorf("err = %v", err)
		}
	})
	for _, tc := range []struct {
		o    status.Options
		flag string
	}{
		{status.Options{Prefix: "hb.*"}, "--prefix"},
		{status.Options{FailOn: "dead,zombie"}, "--fail-on"}, {status.Options{FailOn: "dead", Watch: true}, "--fail-on"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.o), func(t *testing.T) {
			out, err := run(context.Background(), tc.o)
			var ce *cfgerr.Error
			if !errors.As(err, &ce) || ce.Field != tc.flag || out != "" {
				t.Errorf("err = %v, want a cfgerr.Error naming %s; out:\n%s", err, tc.flag, out)
			}
		})
	}
}

// TestDuplicateMonitorIDs: real monitors that share an id are each shown
// as their own, in columns named by their micro service instance ids,
// which are the ids `nats micro ls` lists for them, and warned about.
func TestDuplicateMonitorIDs(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	_, svcA := meshtest.StartMonitor(t, url, "mon-a")
	// Two hosts named vm, each running a monitor with the default id.
	_, vm1 := meshtest.StartMonitor(t, url, "vm")
	_, vm2 := meshtest.StartMonitor(t, url, "vm")
	meshtest.StartNode(t, url, "web-1", fast)
	r := gather(t, natstest.Connect(t, url))

	vms := []string{vm1.Info().ID, vm2.Info().ID}
	slices.Sort(vms)
	var cols []string
	for _, m := range r.Monitors {
		cols = append(cols, m.Column())
	}
	if want := []string{"mon-a", "vm@" + vms[0], "vm@" + vms[1]}; !slices.Equal(cols, want) || r.Monitors[0].Instance != svcA.Info().ID ||
		r.Monitors[0].Instances != 1 || r.Monitors[1].Instances != 2 {
		t.Fatalf("monitors = %+v, columns %q; want %q", r.Monitors, cols, want)
	}
	natstest.Eventually(t, "web-1 alive to all three", func() bool {
		r = gather(t, natstest.Connect(t, url))
		return len(r.Peers) == 1 && len(r.Peers[0].States) == 3 && r.Peers[0].State == "alive"
	})
	want := fmt.Sprintf(`2 monitors answer as "vm" (instances %s, %s): give each its own --id`, vms[0], vms[1])
	if len(r.Warnings) != 1 || r.Warnings[0] != want {
		t.Errorf("warnings = %q, want %q", r.Warnings, want)
	}
	var out bytes.Buffer
	if err := status.Render(&out, r); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "3 monitors under 2 ids") || !strings.HasSuffix(got, "\nwarning: "+want+"\n") ||
		!strings.Contains(strings.SplitN(got, "\n", 2)[0], "  mon-a  vm@"+vms[0]+"  vm@"+vms[1]) {
		t.Errorf("render:\n%s", got)
	}
	out.Reset()
	if err := status.RenderJSON(&out, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Monitors []struct {
			ID        string `json:"id"`
			Instances int    `json:"instances"`
			Instance  string `json:"instance"`
		} `json:"monitors"`
		Peers []struct {
			States map[string]string `json:"states"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if m := doc.Monitors[2]; m.ID != "vm" || m.Instances != 2 || m.Instance != vms[1] || doc.Peers[0].States["vm@"+vms[1]] != "alive" {
		t.Errorf("JSON = %s", out.String())
	}
}

func TestRunFailOn(t *testing.T) {
	ms := startMesh(t)
	run := func(o status.Options) (string, error) {
		var stdout bytes.Buffer
		err := status.Run(context.Background(), ms.client, o, &stdout)
		return stdout.String(), err
	}
	if out, err := run(status.Options{FailOn: "dead,suspect,split,unready,shared-id"}); err != nil || !strings.Contains(out, "web-2") {
		t.Fatalf("healthy mesh: err %v, out:\n%s", err, out)
	}
	ms.killWeb2()
	natstest.Eventually(t, "mon-a convicts web-2", func() bool {
		p, _ := ms.monA.Peer("web-2")
		return p.State == monitor.StateDead
	})
	// mon-b still says alive: web-2 is dead to one monitor and split.
	out, err := run(status.Options{FailOn: "split, dead,unready"})
	if !errors.Is(err, status.ErrFailOn) || err.Error() != "--fail-on: 1 peer dead, 1 peer split" {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(out, "! mon-a=dead mon-b=alive") {
		t.Errorf("the report must be printed all the same:\n%s", out)
	}
	if _, err := run(status.Options{JSON: true, FailOn: "unready"}); err != nil {
		t.Errorf("unready: err = %v", err)
	}
	for _, o := range []status.Options{{FailOn: "zombie"}, {FailOn: "dead,"}, {FailOn: "dead", Watch: true}} {
		if _, err := run(o); !errors.Is(err, cfgerr.ErrInvalid) {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
}

func TestFind(t *testing.T) {
	r := &status.Report{
		Monitors: []status.Monitor{
			{ID: "a", Instance: "1", Status: true, Ready: true, PeersAnswered: true, Instances: 2},
			{ID: "a", Instance: "2", Status: true, Ready: true, PeersAnswered: true, Instances: 2},
			{ID: "b", Status: true, Ready: true, PeersAnswered: true, Impaired: true, Instances: 1},
			{ID: "c", Status: true, Ready: true, Instances: 1},
		},
		Peers: []status.Peer{
			{ID: "x", States: map[string]string{"a": "dead", "b": "dead"}},
			{ID: "y", Disagree: true, States: map[string]string{"a": "dead", "b": "suspect"}},
			{ID: "z", States: map[string]string{"a": "alive", "b": "alive"}},
		},
	}
	got := strings.Join(r.Find(status.FailConditions()), ", ")
	if want := "2 peers dead, 1 peer suspect, 1 peer split, 2 monitors unready, 1 monitor id shared"; got != want {
		t.Errorf("Find = %q, want %q", got, want)
	}
	if got := r.Find([]string{"split"}); len(got) != 1 {
		t.Errorf("Find(split) = %q", got)
	}
	if got := r.Find(nil); got != nil {
		t.Errorf("Find(nil) = %q", got)
	}
}

// TestRunShowsConflict: two processes beating as one id are marked on
// the row and counted in the summary, and --fail-on conflict fails.
func TestRunShowsConflict(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon, _ := meshtest.StartMonitor(t, url, "mon-a")
	meshtest.StartNode(t, url, "web-1", fast)
	meshtest.StartNode(t, url, "web-1", fast) // a second process, its own boot
	meshtest.StartNode(t, url, "web-2", fast)
	natstest.Eventually(t, "mon-a sees the conflict", func() bool {
		p, _ := mon.Peer("web-1")
		return p.Conflict
	})
	nc := natstest.Connect(t, url)
	var stdout bytes.Buffer
	err := status.Run(context.Background(), nc, status.Options{FailOn: "dead,conflict"}, &stdout)
	if !errors.Is(err, status.ErrFailOn) || err.Error() != "--fail-on: 1 peer id in conflict" {
		t.Errorf("err = %v", err)
	}
	out := stdout.String()
	var web1, web2 string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "web-1 "):
			web1 = line
		case strings.HasPrefix(line, "web-2 "):
			web2 = line
		}
	}
	if !strings.Contains(web1, "! two processes beat as this id") || strings.Contains(web2, "two processes") {
		t.Errorf("rows:\n%s\n%s\nreport:\n%s", web1, web2, out)
	}
	if !strings.Contains(out, "2 peers, 1 monitor, 1 beaten by two processes:") {
		t.Errorf("summary:\n%s", out)
	}
	if err := status.Run(context.Background(), nc, status.Options{FailOn: "dead,split"}, io.Discard); err != nil {
		t.Errorf("without conflict in --fail-on: err = %v", err)
	}
}
