package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

// bound is the generous limit for anything the tests wait for.
const bound = 30 * time.Second

var hbmeshBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hbmesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hbmeshBin = filepath.Join(dir, "hbmesh")
	build := exec.Command("go", "build", "-o", hbmeshBin, "./cmd/hbmesh")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building hbmesh:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// tool finds an external binary; see natstest.Tool.
func tool(t *testing.T, name string) string {
	t.Helper()
	return natstest.Tool(t, name)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process in its own process group, killed when the test
// ends whatever happens.
type proc struct {
	name string
	cmd  *exec.Cmd
	errf *os.File
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, stdout io.Writer, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errf, err := os.Create(filepath.Join(t.TempDir(), name+".stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stdout, errf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, errf: errf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(errf.Name())
			t.Logf("--- %s stderr ---\n%s", name, tail(string(b), 3000))
		}
		errf.Close()
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		t.Fatalf("%s did not exit within %v", p.name, bound)
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// eventLog parses a monitor's --json stdout as it arrives, with
// monitor.DecodeEvent.
type eventLog struct {
	mu     sync.Mutex
	events []monitor.Event
	bad    []string
	notify chan struct{}
}

func newEventLog() (*eventLog, io.WriteCloser) {
	l := &eventLog{notify: make(chan struct{}, 1)}
	r, w := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			e, _, err := monitor.DecodeEvent(sc.Bytes())
			l.mu.Lock()
			if err != nil {
				l.bad = append(l.bad, sc.Text())
			} else {
				l.events = append(l.events, e)
			}
			l.mu.Unlock()
			select {
			case l.notify <- struct{}{}:
			default:
			}
		}
	}()
	return l, w
}

func (l *eventLog) snapshot() []monitor.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]monitor.Event(nil), l.events...)
}

func (l *eventLog) waitFor(t *testing.T, id string, state monitor.State) monitor.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	for {
		for _, e := range l.snapshot() {
			if e.ID == id && e.State == state {
				return e
			}
		}
		select {
		case <-l.notify:
		case <-ctx.Done():
			t.Fatalf("monitor did not report %s %s within %v; saw %+v", id, state, bound, l.snapshot())
		}
	}
}

func (l *eventLog) count(id string, state monitor.State) int {
	n := 0
	for _, e := range l.snapshot() {
		if e.ID == id && e.State == state {
			n++
		}
	}
	return n
}

func netDial(port int) (net.Conn, error) {
	return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
}
