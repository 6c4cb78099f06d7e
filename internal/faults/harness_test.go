//go:build faults

package faults_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// readyTimeout bounds waits for a process to come up (a server's port to
// accept, a node's first beat to reach the monitor).
const readyTimeout = 15 * time.Second

// harness is shared by every scenario: the built binary and the run's
// settings.
type harness struct {
	bin      string
	logDir   string
	interval time.Duration
	timeout  time.Duration // the configured dead timeout: DeadAfter × interval
}

// build compiles ./cmd/hbmesh from the module root into dir.
func build(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "hbmesh")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hbmesh")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hbmesh: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitPort waits until something accepts TCP connections on addr.
func waitPort(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	// There is no event for "another process started listening"; poll.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after %v: %w", addr, within, err)
		}
		<-tick.C
	}
}

// proc is one child process, in its own process group.
type proc struct {
	name    string
	args    []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has been reaped
	err     error         // Wait's result, valid once done is closed
}

// spawn starts the binary with args. Its stderr goes to a log file named
// after name; stdout, if non-nil, receives its stdout. The process group is
// SIGKILLed and reaped when the test ends, whatever happened.
func (h *harness) spawn(t *testing.T, name string, stdout *os.File, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(h.logDir, fmt.Sprintf("%s-%s.log", sanitize(t.Name()), name))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "### %s %s: %s\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "))
	cmd := exec.Command(h.bin, args...)
	cmd.Stderr = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, args: args, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
	})
	return p
}

func sanitize(s string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(s)
}

// signal sends sig to the process's group; it is a no-op once the
// process has exited.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process and waits until it is reaped.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to exit with SIGTERM (a node then says goodbye)
// and waits; after grace it is killed.
func (p *proc) stop(grace time.Duration) {
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// event is one line of `hbmesh monitor --json`, as monitor.DecodeEvent
// reads it, stamped with when the harness read it.
type event struct {
	monitor.Event
	At time.Time
}

func (e event) String() string {
	return fmt.Sprintf("%s %s %s→%s (%s, seq %d)", e.At.Format("15:04:05.000"), e.ID, e.Prev, e.State, e.Reason, e.Seq)
}

// monitorProc is a `hbmesh monitor --json` process and the events it has
// printed so far.
type monitorProc struct {
	*proc
	readerDone chan struct{}

	mu      sync.Mutex
	events  []event
	bad     []string      // lines that did not parse
	changed chan struct{} // closed and replaced on every new event
}

// startMonitor runs `hbmesh monitor --json` against url. A goroutine reads
// its stdout, stamps each event with its receive time and records it; the
// raw lines are also kept in a file next to the stderr log.
func (h *harness) startMonitor(t *testing.T, name, url string, extra ...string) *monitorProc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := h.spawn(t, name, w, append([]string{"monitor", "-s", url, "--json", "--log-format", "json"}, extra...)...)
	w.Close() // the child holds its own copy
	m := &monitorProc{proc: p, readerDone: make(chan struct{}), changed: make(chan struct{})}
	raw, err := os.Create(strings.TrimSuffix(p.logPath, ".log") + ".events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(m.readerDone)
		defer raw.Close()
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			at := time.Now()
			line := sc.Bytes()
			fmt.Fprintf(raw, "%s\t%s\n", at.Format(time.RFC3339Nano), line)
			ev, _, err := monitor.DecodeEvent(line)
			m.mu.Lock()
			if err != nil {
				m.bad = append(m.bad, string(bytes.Clone(line)))
			} else {
				m.events = append(m.events, event{ev, at})
			}
			close(m.changed)
			m.changed = make(chan struct{})
			m.mu.Unlock()
		}
	}()
	// Registered after spawn's cleanup, so it runs first: kill, then wait
	// for the reader to drain the pipe.
	t.Cleanup(func() {
		p.kill()
		<-m.readerDone
	})
	return m
}

// snapshot returns the events so far.
func (m *monitorProc) snapshot() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]event(nil), m.events...)
}

// await returns the first event for id in state received at or after
// after, waiting up to within from now.
func (m *monitorProc) await(id string, state monitor.State, after time.Time, within time.Duration) (event, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		m.mu.Lock()
		for _, ev := range m.events {
			if ev.ID == id && ev.State == state && !ev.At.Before(after) {
				m.mu.Unlock()
				return ev, nil
			}
		}
		changed := m.changed
		m.mu.Unlock()
		select {
		case <-changed:
		case <-m.readerDone:
			return event{}, fmt.Errorf("monitor exited (%v) before %s was %s", m.err, id, state)
		case <-timer.C:
			return event{}, fmt.Errorf("%s not %s within %v", id, state, within)
		}
	}
}

// serverArgs builds `hbmesh server` arguments for a standalone server or,
// with routes, a cluster member.
func serverArgs(name string, port, clusterPort int, routes []int) []string {
	args := []string{"server", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "--name", name, "--log-format", "json"}
	if clusterPort != 0 {
		var urls []string
		for _, r := range routes {
			urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", r))
		}
		args = append(args, "--cluster_name", "faults",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", clusterPort),
			"--routes", strings.Join(urls, ","))
	}
	return args
}

func natsURL(port int) string { return fmt.Sprintf("nats://127.0.0.1:%d", port) }
