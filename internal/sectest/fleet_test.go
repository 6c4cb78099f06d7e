package sectest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

const securityDoc = "../../docs/SECURITY.md"

// fleetSection is the heading of SECURITY.md's decentralized-auth section.
const fleetSection = "## A fleet: one signing key for every node"

// fleetSteps returns the sh blocks of SECURITY.md's fleet section, in
// order, and the section's text.
func fleetSteps(t *testing.T) (blocks []string, section string) {
	t.Helper()
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n"+fleetSection+"\n")
	if !ok {
		t.Fatalf("%s has no %q section", securityDoc, fleetSection)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var cur *strings.Builder
	for _, line := range strings.Split(rest, "\n") {
		switch {
		case cur == nil && line == "```sh":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil || len(blocks) == 0 {
		t.Fatalf("%s: unterminated or missing sh blocks in %q", securityDoc, fleetSection)
	}
	return blocks, rest
}

// fleetInterval is the test fleet's beat interval: long enough that a
// probe sent to another process and answered from a third fits, on a
// loaded machine, between suspicion (2 intervals) and death (3).
const fleetInterval = 500 * time.Millisecond

// fleetHosts are the node ids of the test fleet: credentials for all
// five, nodes run as a, c and d, and e to be killed; b's credentials exist
// but no b ever runs.
var fleetHosts = []string{"a", "b", "c", "d", "e"}

// crashInterval is the beat interval of the node the fleet test kills:
// the timeout path would take two of them to suspect it, far longer than
// the test waits, so its death can only be the crash fast path's.
const crashInterval = time.Minute

// TestFleetAuth runs SECURITY.md's decentralized-auth steps with the real
// nats CLI, exactly as the document writes them, then runs a server in
// operator mode with the configuration they produce and shows what the
// section promises: nodes beat with one role's credentials and cannot
// speak for one another, the monitor probes, publishes events, keeps its
// restart memory and answers status, takes the crash fast path, and a
// node without credentials is refused; and that nothing hits a permission
// the section does not grant.
func TestFleetAuth(t *testing.T) {
	natsCLI := natstest.Tool(t, "nats")
	allowResp := natstest.Tool(t, "allow-responses")
	blocks, section := fleetSteps(t)
	bin := buildCLI(t)

	// Every documented command line the test runs below is in the section.
	for _, s := range []string{
		"hbmesh node --creds /etc/hbmesh/node.creds --id ",
		"NATS_CREDS=/etc/hbmesh/node.creds hbmesh node",
		"hbmesh monitor --creds /etc/hbmesh/monitor.creds --inbox-prefix _INBOX_monitor1 --id monitor1 --events-stream HBEVENTS",
		"hbmesh notify --creds /etc/hbmesh/notify.creds --inbox-prefix _INBOX_notify1 --stream HBEVENTS --on-event ",
		"hbmesh status --creds ops.creds --inbox-prefix _INBOX_ops",
	} {
		if !strings.Contains(section, s) {
			t.Errorf("%s no longer shows %q, which this test runs", securityDoc, s)
		}
	}

	// The admin machine: a home of its own, the tools on PATH.
	root := t.TempDir()
	work := filepath.Join(root, "admin")
	for _, d := range []string{work, filepath.Join(root, "home"), filepath.Join(root, "config"), filepath.Join(root, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "hosts.txt"), []byte(strings.Join(fleetHosts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Dir(natsCLI) + string(os.PathListSeparator) + filepath.Dir(allowResp) + string(os.PathListSeparator) + os.Getenv("PATH")
	env := append(withoutVars(os.Environ(), "NATS_", "HOME=", "XDG_", "PATH=", "DATA="),
		"HOME="+filepath.Join(root, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(root, "config"),
		"XDG_DATA_HOME="+filepath.Join(root, "data"),
		"DATA="+filepath.Join(root, "server"),
		"PATH="+path,
	)

	// Steps 1-5, up to the server's configuration; the push needs the server.
	push := -1
	for i, b := range blocks {
		if strings.Contains(b, "nats auth account push") {
			push = i
			break
		}
		runStep(t, work, env, i+1, b)
	}
	if push < 0 {
		t.Fatalf("%s: no block pushes the account", securityDoc)
	}
	creds := func(user string) string { return filepath.Join(work, "creds", user+".creds") }
	for _, u := range append(fleetHosts, "monitor1", "notify1", "ops", "sys") {
		st, err := os.Stat(creds(u))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", creds(u), st.Mode().Perm())
		}
	}

	var serverLog syncio.Writer
	s := startServer(t, filepath.Join(work, "hbmesh-server.conf"), func(c *embedded.Config) {
		c.Host = "127.0.0.1"
		c.Logger = slog.New(slog.NewTextHandler(&serverLog, nil))
	})
	url := s.ClientURL()
	for i := push; i < len(blocks); i++ {
		runStep(t, work, append(env, "NATS_URL="+url), i+1, blocks[i])
	}

	// Ops watches the beats and the events, with its own credentials. Not
	// "hb.>": a subscriber to a node's probe subject keeps the server from
	// answering "no responders" for it, and the crash fast path would fall
	// back to the timeout path (docs/RELIABILITY.md).
	ops := connect(t, url, nats.UserCredentials(creds("ops")), nats.CustomInboxPrefix("_INBOX_ops"), nats.Name("ops"))
	watch := &watcher{notify: make(chan struct{}, 1)}
	for _, s := range []string{subj.Beats(), "hb.events.>"} {
		if _, err := ops.Subscribe(s, watch.add); err != nil {
			t.Fatal(err)
		}
	}
	if err := ops.Flush(); err != nil {
		t.Fatal(err)
	}

	// The monitor and two nodes as the section runs them, the third
	// in-process so that its beats can be withheld.
	monArgs := []string{"monitor", "-s", url, "--creds", creds("monitor1"), "--inbox-prefix", "_INBOX_monitor1", "--id", "monitor1", "--events-stream", "HBEVENTS", "--save-every", "100ms"}
	mon := startProc(t, bin, nil, monArgs...)
	iv := fleetInterval.String()
	a := startProc(t, bin, nil, "node", "-s", url, "--creds", creds("a"), "--id", "a", "--interval", iv)
	d := startProc(t, bin, []string{"NATS_CREDS=" + creds("d")}, "node", "-s", url, "--id", "d", "--interval", iv)
	var dropC dropSwitch
	cConn := connect(t, url, nats.UserCredentials(creds("c")), nats.Name("node c"))
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Interval, cfg.Jitter = "c", fleetInterval, 0
	cfg.DropBeat = func(uint64) bool { return dropC.on() }
	c, err := node.New(cConn.Conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "node c", c.Run, node.ErrConnClosed)
	for _, id := range []string{"a", "c", "d"} {
		watch.waitEvent(t, id, monitor.StateAlive, monitor.ReasonFirstBeat)
	}
	waitFastPathOn(t, mon)
	checked := map[string]*proc{} // whose stderr must show no permission violation

	// notify, with the stream the monitor made, runs its hook for every
	// death until the test ends.
	hookLog := filepath.Join(root, "hook.log")
	notify := startProc(t, bin, nil, "notify", "-s", url, "--creds", creds("notify1"), "--inbox-prefix", "_INBOX_notify1", "--stream", "HBEVENTS",
		"--on-event", `echo "$HBMESH_PEER_ID $HBMESH_STATE $HBMESH_DELIVERY" >> "`+hookLog+`"`, "--on-event-states", "dead")
	natstest.Eventually(t, "notify started", func() bool { return strings.Contains(notify.stderr.String(), `msg="notify started"`) })

	t.Run("a stolen node speaks only for itself", func(t *testing.T) {
		stolen := connect(t, url, nats.UserCredentials(creds("a")), nats.Name("stolen a"))
		if err := stolen.Publish(subj.Beat("b"), forgedBeat("b")); err != nil {
			t.Fatal(err)
		}
		err := stolen.errs.take(t, violation("pub", "hb.b"))
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("async error %v does not wrap nats.ErrPermissionViolation", err)
		}
		for _, r := range []struct{ op, subject string }{
			{"sub", subj.Probe("b")},
			{"pub", subj.Probe("c")},
			{"pub", "hb.events.dead.c"},
			{"sub", "hb.>"},
			{"pub", "_INBOX_monitor1.x.b"},
		} {
			do(t, stolen, r.op, r.subject)
			stolen.errs.take(t, violation(r.op, r.subject))
		}
	})

	t.Run("notify's credentials serve notify alone", func(t *testing.T) {
		stolen := connect(t, url, nats.UserCredentials(creds("notify1")), nats.CustomInboxPrefix("_INBOX_notify1"), nats.Name("stolen notify1"))
		if err := stolen.Publish(subj.Beat("b"), forgedBeat("b")); err != nil {
			t.Fatal(err)
		}
		stolen.errs.take(t, violation("pub", "hb.b"))
		for _, r := range []struct{ op, subject string }{
			{"pub", "hb.events.dead.c"},
			{"pub", subj.Probe("c")},
			{"sub", "hb.>"},
			{"pub", "$JS.API.CONSUMER.MSG.NEXT.HBEVENTS.other"},
			{"pub", "$JS.API.STREAM.DELETE.HBEVENTS"},
			{"pub", "_INBOX_monitor1.x.b"},
		} {
			do(t, stolen, r.op, r.subject)
			stolen.errs.take(t, violation(r.op, r.subject))
		}
	})

	t.Run("the monitor probes a silent node", func(t *testing.T) {
		from := watch.len()
		dropC.set(true)
		watch.waitEventFrom(t, from, "c", monitor.StateSuspect, monitor.ReasonSilent)
		watch.waitEventFrom(t, from, "c", monitor.StateAlive, monitor.ReasonProbeAnswered)
		dropC.set(false)
	})

	t.Run("ops asks the monitor", func(t *testing.T) {
		out := runCLI(t, bin, nil, "status", "-s", url, "--creds", creds("ops"), "--inbox-prefix", "_INBOX_ops", "--expect", "1", "--json")
		var rep struct {
			Peers []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"peers"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("hbmesh status --json: %v\n%s", err, out)
		}
		got := map[string]string{}
		for _, p := range rep.Peers {
			got[p.ID] = p.State
		}
		for _, id := range []string{"a", "c", "d"} {
			if got[id] != "alive" {
				t.Errorf("status: %s is %q, want alive (%v)", id, got[id], got)
			}
		}
		if _, ok := got["b"]; ok {
			t.Errorf("status knows b: %v", got)
		}
	})

	// The restarted monitor runs to the end of the test.
	mon.stop(t)
	checked["monitor, first run"] = mon
	mon = startProc(t, bin, nil, monArgs...)
	t.Run("the monitor remembers its peers across a restart", func(t *testing.T) {
		restored := regexp.MustCompile(`msg="monitor started" .*restored=(\d+)`)
		natstest.Eventually(t, "restarted monitor started", func() bool { return restored.MatchString(mon.stderr.String()) })
		if m := restored.FindStringSubmatch(mon.stderr.String()); m[1] != "3" {
			t.Errorf("restarted monitor restored %s peers, want 3 (a, c, d):\n%s", m[1], mon.stderr.String())
		}
	})

	t.Run("a crashed node is dead by the crash fast path", func(t *testing.T) {
		waitFastPathOn(t, mon)
		from := watch.len()
		e := startProc(t, bin, nil, "node", "-s", url, "--creds", creds("e"), "--id", "e", "--interval", crashInterval.String())
		watch.waitEventFrom(t, from, "e", monitor.StateAlive, monitor.ReasonFirstBeat)
		if err := e.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		watch.waitEventFrom(t, from, "e", monitor.StateDead, monitor.ReasonDisconnected)
		checked["node e"] = e
	})

	t.Run("notify runs the hook once per death", func(t *testing.T) {
		hookRuns := func() string {
			b, _ := os.ReadFile(hookLog) // "" until the first run
			return string(b)
		}
		natstest.Eventually(t, "e's hook", func() bool { return hookRuns() != "" })
		// The next death's hook runs only once e's event is settled:
		// notify takes one event at a time, in order.
		from := watch.len()
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		watch.waitEventFrom(t, from, "d", monitor.StateDead, monitor.ReasonDisconnected)
		natstest.Eventually(t, "d's hook", func() bool { return strings.Contains(hookRuns(), "d dead") })
		if got := hookRuns(); got != "e dead 1\nd dead 1\n" {
			t.Errorf("hook runs:\n%s", got)
		}
		notify.stop(t)
	})

	t.Run("a node without credentials is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), exitWithin)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "node", "-s", url, "--id", "b")
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("still running after %v; stderr:\n%s", exitWithin, stderr.String())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("exit: %v, want non-zero; stderr:\n%s", err, stderr.String())
		}
		line := strings.TrimRight(stderr.String(), "\n")
		if strings.Contains(line, "\n") || !strings.Contains(strings.ToLower(line), "authorization") {
			t.Fatalf("stderr is not one line naming the authorization failure:\n%s", stderr.String())
		}
	})

	// b never beat: nothing on its subjects reached ops, no event named it.
	for _, m := range watch.all() {
		if m.Subject == subj.Beat("b") || strings.HasSuffix(m.Subject, ".b") {
			t.Errorf("ops saw %q: %s", m.Subject, m.Data)
		}
	}
	// No one hit a permission the section does not grant: no process
	// says so, and the server refused only the stolen credentials.
	checked["monitor"], checked["node a"], checked["node d"], checked["notify"] = mon, a, d, notify
	for name, p := range checked {
		if s := p.stderr.String(); strings.Contains(strings.ToLower(s), "permission") {
			t.Errorf("%s hit a permission violation:\n%s", name, s)
		}
	}
	for _, line := range strings.Split(serverLog.String(), "\n") {
		if strings.Contains(line, "Violation") && !strings.Contains(line, `:stolen a\"`) && !strings.Contains(line, `:stolen notify1\"`) {
			t.Errorf("the server refused a client that is not a stolen one:\n%s", line)
		}
	}
}

// waitFastPathOn waits for the monitor to say that the crash fast path is on.
func waitFastPathOn(t *testing.T, mon *proc) {
	t.Helper()
	natstest.Eventually(t, "the monitor says whether the crash fast path is on", func() bool {
		return strings.Contains(mon.stderr.String(), "crash fast path o")
	})
	if s := mon.stderr.String(); !strings.Contains(s, `msg="crash fast path on: DISCONNECT advisories arrive"`) {
		t.Fatalf("the monitor does not say that the crash fast path is on:\n%s", s)
	}
}

// runStep runs one documented sh block with bash in dir.
func runStep(t *testing.T, dir string, env []string, n int, block string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", block)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("SECURITY.md fleet block %d failed: %v\n--- block\n%s--- output\n%s", n, err, block, out)
	}
}

// withoutVars drops the variables whose "NAME=" starts with any prefix.
func withoutVars(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// proc is a running hbmesh process.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncio.Writer
	done   chan error
}

// startProc starts bin with args and extra environment, and kills it when
// the test ends if it is still running.
func startProc(t *testing.T, bin string, extraEnv []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: &syncio.Writer{}, done: make(chan error, 1)}
	p.cmd.Env = append(cleanEnv(), extraEnv...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%v exited with %v; stderr:\n%s", p.cmd.Args, err, p.stderr.String())
		}
	case <-time.After(exitWithin):
		t.Fatalf("%v still running %v after SIGTERM", p.cmd.Args, exitWithin)
	}
}

// runCLI runs bin to completion and returns its stdout.
func runCLI(t *testing.T, bin string, extraEnv []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitWithin)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hbmesh %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// watcher records what a subscriber receives.
type watcher struct {
	mu     sync.Mutex
	msgs   []*nats.Msg
	notify chan struct{}
}

func (w *watcher) add(m *nats.Msg) {
	w.mu.Lock()
	w.msgs = append(w.msgs, m)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *watcher) all() []*nats.Msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*nats.Msg(nil), w.msgs...)
}

func (w *watcher) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

// waitEvent waits for a published event of peer id into st for reason.
func (w *watcher) waitEvent(t *testing.T, id string, st monitor.State, reason monitor.Reason) {
	t.Helper()
	w.waitEventFrom(t, 0, id, st, reason)
}

// waitEventFrom is waitEvent among the messages from index from on.
func (w *watcher) waitEventFrom(t *testing.T, from int, id string, st monitor.State, reason monitor.Reason) {
	t.Helper()
	want := subj.Event(st.String(), id)
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		msgs := w.all()
		for _, m := range msgs[min(from, len(msgs)):] {
			if m.Subject != want {
				continue
			}
			if e, _, err := monitor.DecodeEvent(m.Data); err == nil && e.Reason == reason {
				return
			}
		}
		select {
		case <-w.notify:
		case <-timer.C:
			var seen []string
			for _, m := range msgs {
				if strings.HasPrefix(m.Subject, "hb.events.") {
					seen = append(seen, m.Subject+" "+string(m.Data))
				}
			}
			t.Fatalf("no event %s (%s) within %v; events:\n%s", want, reason, deadline, strings.Join(seen, "\n"))
		}
	}
}
