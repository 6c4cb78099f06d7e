package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// TestStandaloneServer runs hbmesh node and monitor processes against a
// standalone nats-server and checks them with the real nats CLI.
func TestStandaloneServer(t *testing.T) {
	natsServer, natsCLI := tool(t, "nats-server"), tool(t, "nats")
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	start(t, "nats-server", nil, natsServer, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	waitTCP(t, port)

	log, w := newEventLog()
	t.Cleanup(func() { w.Close() })
	mon := start(t, "monitor", w, hbmeshBin, "monitor", "-s", url, "--json")
	const iv = "250ms"
	nodes := map[string]*proc{}
	for _, id := range []string{"e2e-kill", "e2e-stop", "e2e-term", "e2e-hup"} {
		nodes[id] = start(t, id, nil, hbmeshBin, "node", "-s", url, "--id", id, "--interval", iv, "--label", "suite=e2e")
	}
	for id := range nodes {
		if e := log.waitFor(t, id, monitor.StateAlive); e.Prev != monitor.StateUnknown {
			t.Errorf("first event of %s has prev %q, want none", id, e.Prev)
		}
	}

	t.Run("nats sub shows readable beats", func(t *testing.T) {
		out := runTool(t, natsCLI, "-s", url, "sub", "hb.>", "--raw", "--count", "1")
		line := strings.TrimSpace(strings.SplitN(strings.TrimSpace(out), "\n", 2)[0])
		var beat map[string]any
		if err := json.Unmarshal([]byte(line), &beat); err != nil {
			t.Fatalf("nats sub output %q is not a JSON beat: %v", out, err)
		}
		for _, k := range []string{"v", "id", "host", "pid", "boot", "seq", "ts", "interval_ms", "status", "version", "labels"} {
			if _, ok := beat[k]; !ok {
				t.Errorf("beat %s lacks key %q", line, k)
			}
		}
		if beat["status"] != "alive" || beat["v"] != 1.0 {
			t.Errorf("beat %s: want v 1 and status alive", line)
		}
	})

	t.Run("nats req gets a probe reply", func(t *testing.T) {
		out := runTool(t, natsCLI, "-s", url, "req", "hb.e2e-kill.probe", "", "--raw")
		var reply map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &reply); err != nil {
			t.Fatalf("probe reply %q is not JSON: %v", out, err)
		}
		for _, k := range []string{"id", "boot", "seq", "ts"} {
			if _, ok := reply[k]; !ok {
				t.Errorf("probe reply lacks %q: %s", k, out)
			}
		}
		if reply["id"] != "e2e-kill" {
			t.Errorf("probe reply id = %v", reply["id"])
		}
	})

	t.Run("hbmesh probe", func(t *testing.T) {
		out, err := exec.Command(hbmeshBin, "probe", "-s", url, "e2e-kill").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "e2e-kill") {
			t.Fatalf("hbmesh probe: %v\n%s", err, out)
		}
		cmd := exec.Command(hbmeshBin, "probe", "-s", url, "--timeout", "1s", "nobody-home")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("probe of an absent id succeeded: %s", out)
		}
	})

	t.Run("SIGKILL is dead", func(t *testing.T) {
		nodes["e2e-kill"].signal(t, syscall.SIGKILL)
		log.waitFor(t, "e2e-kill", monitor.StateDead)
	})
	t.Run("SIGSTOP is dead", func(t *testing.T) {
		nodes["e2e-stop"].signal(t, syscall.SIGSTOP)
		log.waitFor(t, "e2e-stop", monitor.StateDead)
		nodes["e2e-stop"].signal(t, syscall.SIGCONT)
		waitEvent(t, log, func(e monitor.Event) bool {
			return e.ID == "e2e-stop" && e.State == monitor.StateAlive && e.Prev == monitor.StateDead
		})
	})
	// A hangup, as when the terminal of a foreground node closes, is a
	// stop like SIGTERM: the node says goodbye and exits 0.
	for _, tc := range []struct {
		id, name string
		sig      syscall.Signal
	}{{"e2e-term", "SIGTERM", syscall.SIGTERM}, {"e2e-hup", "SIGHUP", syscall.SIGHUP}} {
		id, sig := tc.id, tc.sig
		t.Run(tc.name+" is left, never dead", func(t *testing.T) {
			nodes[id].signal(t, sig)
			if code := nodes[id].wait(t); code != 0 {
				t.Errorf("node exited %d after %v, want 0", code, sig)
			}
			log.waitFor(t, id, monitor.StateLeft)
			// Give a would-be false death every chance to show up.
			time.Sleep(4 * 250 * time.Millisecond) // wait past the dead timeout on purpose
			if n := log.count(id, monitor.StateDead); n != 0 {
				t.Fatalf("a node that said goodbye was reported dead %d times", n)
			}
		})
	}
	t.Run("a monitor stops cleanly on SIGHUP", func(t *testing.T) {
		mon.signal(t, syscall.SIGHUP)
		if code := mon.wait(t); code != 0 {
			t.Errorf("monitor exited %d after SIGHUP, want 0", code)
		}
	})
	if len(log.bad) > 0 {
		t.Errorf("monitor --json printed lines that are not events: %q", log.bad)
	}
}

func waitEvent(t *testing.T, l *eventLog, pred func(monitor.Event) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	for {
		for _, e := range l.snapshot() {
			if pred(e) {
				return
			}
		}
		select {
		case <-l.notify:
		case <-ctx.Done():
			t.Fatalf("no matching event within %v; saw %+v", bound, l.snapshot())
		}
	}
}

func runTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		c, err := netDial(port)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on port %d after %v", port, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
