//go:build docker

package dockertest_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/monitor"
)

// project is the compose project the test runs under: not the demo's
// (hbmesh-demo), so `make cluster-up` and this test do not collide.
// $HBMESH_E2E_PROJECT names another (make e2e-docker E2E_PROJECT=...).
var project = cmp.Or(os.Getenv("HBMESH_E2E_PROJECT"), "hbmesh-e2e")

// Deadlines are generous: a loaded CI machine may be slow to start
// containers, and the default detector needs ~3 beat intervals (3s) plus
// a probe to convict. Polls are cheap HTTP GETs on loopback.
const (
	startTimeout = 3 * time.Minute
	stepTimeout  = 60 * time.Second
	pollEvery    = 250 * time.Millisecond
)

// The nodes of docker-compose.yml: node-1 and node-2 are given only
// nats-1's URL, node-3 nats-2's, node-4 and node-5 nats-3's.
var allNodes = []string{"node-1", "node-2", "node-3", "node-4", "node-5"}

// cluster is one running compose project.
type cluster struct {
	t          *testing.T
	root       string   // repository root, where docker-compose.yml is
	image      string   // the image under test
	composeCmd []string // "docker compose" or "docker-compose"
	env        []string // HBMESH_* variables for compose
	ports      map[string]int
	http       *http.Client
	start      time.Time
	names      map[string]string // container id → service, for logs
}

// view is what both monitors said at one instant: monitor name → peer id → peer.
type view map[string]map[string]monitor.PeerJSON

var monitors = []string{"monitor-1", "monitor-2"}

func TestDemoCluster(t *testing.T) {
	c := up(t)

	c.step("start: every node alive in both monitors", stepTimeout, nil, func(v view) error {
		return v.want(allNodes, "alive")
	})
	c.step("start: the crash fast path on in both monitors", stepTimeout, nil, func(view) error {
		for _, m := range monitors {
			var st monitor.StatusJSON
			if err := c.getJSON(m, "/api/status", &st); err != nil {
				return err
			}
			if !st.FastPath {
				return fmt.Errorf("%s: fast_path false", m)
			}
		}
		return nil
	})
	c.stepCrash()

	c.docker("kill", c.container("node-1"))
	c.step("docker kill node-1: dead", stepTimeout, nil, func(v view) error {
		return v.want([]string{"node-1"}, "dead")
	})

	c.docker("pause", c.container("node-2"))
	c.step("docker pause node-2: dead", stepTimeout, nil, func(v view) error {
		return v.want([]string{"node-2"}, "dead")
	})
	c.docker("unpause", c.container("node-2"))
	c.step("docker unpause node-2: alive again", stepTimeout, nil, func(v view) error {
		return v.want([]string{"node-2"}, "alive")
	})

	net := project + "_mesh"
	c.docker("network", "disconnect", net, c.container("node-3"))
	c.step("docker network disconnect node-3: dead", stepTimeout, nil, func(v view) error {
		return v.want([]string{"node-3"}, "dead")
	})
	c.docker("network", "connect", net, c.container("node-3"))
	c.step("docker network connect node-3: alive again", 2*stepTimeout, nil, func(v view) error {
		return v.want([]string{"node-3"}, "alive")
	})

	// SIGTERM: the node says goodbye, so it is left and never dead.
	neverDead := func(ids ...string) func(view) error {
		return func(v view) error {
			for _, m := range monitors {
				for _, id := range ids {
					if p, ok := v[m][id]; ok && p.State == monitor.StateDead {
						return fmt.Errorf("%s says %s is dead", m, id)
					}
				}
			}
			return nil
		}
	}
	c.docker("stop", c.container("node-4"))
	c.step("docker stop node-4: left, never dead", stepTimeout, neverDead("node-4"), func(v view) error {
		return v.want([]string{"node-4"}, "left")
	})
	c.hold("node-4 stays left", 5*time.Second, func(v view) error {
		return v.want([]string{"node-4"}, "left")
	})

	// Kill the server node-5 is connected to. node-5 knows only
	// nats://nats-3:4222; it must fail over to a server it learned from
	// the cluster, and nobody alive may be convicted meanwhile.
	c.docker("kill", c.container("nats-3"))
	c.docker("wait", c.container("nats-3")) // returns once it is gone
	killedAt := time.Now()
	survivors := []string{"node-2", "node-3", "node-5"}
	c.step("docker kill nats-3: node-5 fails over, no false deaths", stepTimeout, neverDead(survivors...), func(v view) error {
		if err := v.want(survivors, "alive"); err != nil {
			return err
		}
		for _, m := range monitors {
			if lb := v[m]["node-5"].LastBeat; !lb.After(killedAt.Add(500 * time.Millisecond)) {
				return fmt.Errorf("%s: node-5 last beat %s, not yet after the failover", m, lb.Format(time.RFC3339Nano))
			}
		}
		return nil
	})
	c.hold("no false deaths with nats-3 down", 10*time.Second, func(v view) error {
		return v.want(survivors, "alive")
	})

	// Restart memory, with nats-3 still down: monitor-2 is down while
	// node-5 dies; started again, it must still know node-5 (from the
	// JetStream KV bucket, which has three replicas, so two servers are a
	// quorum whichever one is missing) and report it dead, not forget it.
	c.compose("stop", "monitor-2")
	c.docker("kill", c.container("node-5"))
	c.step("monitor-2 stopped, docker kill node-5: monitor-1 says dead", stepTimeout, nil, func(v view) error {
		return v.wantOne("monitor-1", []string{"node-5"}, "dead")
	}, "monitor-1")
	c.compose("start", "monitor-2")
	c.healthy("monitor-2")
	c.step("monitor-2 restarted with nats-3 down: remembers node-5 and reports it dead", stepTimeout, nil, func(v view) error {
		return v.want([]string{"node-5"}, "dead")
	})
	c.docker("start", c.container("nats-3"))
	c.healthy("nats-3")

	want := map[string]string{"node-1": "dead", "node-2": "alive", "node-3": "alive", "node-4": "left", "node-5": "dead"}
	c.step("end: both monitors agree on every peer", stepTimeout, nil, func(v view) error {
		for id, st := range want {
			if err := v.want([]string{id}, st); err != nil {
				return err
			}
		}
		ids := map[string]bool{}
		for _, m := range monitors {
			for id := range v[m] {
				ids[id] = true
			}
		}
		for id := range ids {
			a, aok := v["monitor-1"][id]
			b, bok := v["monitor-2"][id]
			if !aok || !bok || a.State != b.State {
				return fmt.Errorf("disagree on %s: monitor-1 %q, monitor-2 %q", id, a.State, b.State)
			}
		}
		return nil
	})
	c.t.Logf("total %s", time.Since(c.start).Round(100*time.Millisecond))
}

// up starts the cluster and registers its removal.
func up(t *testing.T) *cluster {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	image := os.Getenv("HBMESH_IMAGE")
	if image == "" {
		image = "hbmesh:dev"
	}
	if out, err := exec.Command("docker", "image", "inspect", image).CombinedOutput(); err != nil {
		t.Fatalf("image %s not found (run `make image` or `make e2e-docker`): %v: %s", image, err, firstLine(out))
	}
	c := &cluster{
		t: t, root: root, image: image, ports: map[string]int{}, start: time.Now(), names: map[string]string{},
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	c.composeCmd = []string{"docker-compose"}
	if exec.Command("docker", "compose", "version").Run() == nil {
		c.composeCmd = []string{"docker", "compose"}
	}
	for _, name := range []string{"HBMESH_NATS_PORT", "HBMESH_MONITOR1_PORT", "HBMESH_MONITOR2_PORT"} {
		c.ports[name] = freePort(t)
		c.env = append(c.env, fmt.Sprintf("%s=%d", name, c.ports[name]))
	}
	c.env = append(c.env, "HBMESH_IMAGE="+image)

	// A run killed by a timeout may have left the project behind.
	c.composeQuiet("--profile", "scale", "down", "-v", "--remove-orphans")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of the failed run:\n%s", c.composeQuiet("logs", "--no-color", "--tail", "40"))
		}
		if os.Getenv("HBMESH_E2E_KEEP") == "1" {
			t.Logf("kept; remove with: %s -p %s down -v", strings.Join(c.composeCmd, " "), project)
			return
		}
		c.composeQuiet("--profile", "scale", "down", "-v", "--remove-orphans")
	})
	t.Logf("image %s, compose %q, ports %v", image, strings.Join(c.composeCmd, " "), c.ports)
	c.compose("up", "-d")
	for _, m := range monitors {
		c.healthy(m)
	}
	t.Logf("cluster up after %s", time.Since(c.start).Round(100*time.Millisecond))
	return c
}

// step polls both monitors (or only the named ones) until done returns
// nil, failing if always (when non-nil) ever returns an error or the
// timeout passes. It logs what each monitor said about the nodes.
func (c *cluster) step(name string, timeout time.Duration, always, done func(view) error, only ...string) {
	c.t.Helper()
	if len(only) == 0 {
		only = monitors
	}
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last view
	var lastErr error
	for {
		v, err := c.view(only)
		if err == nil {
			last = v
			if always != nil {
				if err := always(v); err != nil {
					c.t.Fatalf("step %q: after %s: %v\n%s", name, since(start), err, v)
				}
			}
			if err = done(v); err == nil {
				c.t.Logf("step %q: ok after %s\n%s", name, since(start), v)
				return
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			c.t.Fatalf("step %q: not done after %s: %v\n%s", name, since(start), lastErr, last)
		}
		<-tick.C
	}
}

// hold checks that cond stays true for d: the absence of a transition can
// only be shown by watching for a while.
func (c *cluster) hold(name string, d time.Duration, cond func(view) error) {
	c.t.Helper()
	start := time.Now()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last view
	for time.Since(start) < d {
		v, err := c.view(monitors)
		if err != nil {
			c.t.Fatalf("hold %q: after %s: %v", name, since(start), err)
		}
		if err := cond(v); err != nil {
			c.t.Fatalf("hold %q: broken after %s: %v\n%s", name, since(start), err, v)
		}
		last = v
		<-tick.C
	}
	c.t.Logf("hold %q: held for %s\n%s", name, d, last)
}

// view asks each named monitor for its peers.
func (c *cluster) view(names []string) (view, error) {
	v := view{}
	for _, m := range names {
		var list httpapi.PeerList
		if err := c.getJSON(m, "/api/peers", &list); err != nil {
			return nil, err
		}
		peers := map[string]monitor.PeerJSON{}
		for _, p := range list.Peers {
			peers[p.ID] = p
		}
		v[m] = peers
	}
	return v, nil
}

func (c *cluster) getJSON(monitor, path string, into any) error {
	port := c.ports["HBMESH_MONITOR1_PORT"]
	if monitor == "monitor-2" {
		port = c.ports["HBMESH_MONITOR2_PORT"]
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	resp, err := c.http.Get(url)
	if err != nil {
		return fmt.Errorf("%s: %w", monitor, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: GET %s: %s", monitor, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("%s: decode %s: %w", monitor, path, err)
	}
	return nil
}

// healthy waits for a service's Docker health check to pass.
func (c *cluster) healthy(service string) {
	c.t.Helper()
	start := time.Now()
	id := c.container(service)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var st string
	for time.Since(start) < startTimeout {
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}", id).Output()
		st = strings.TrimSpace(string(out))
		if err == nil && st == "running/healthy" {
			c.t.Logf("%s healthy after %s", service, since(start))
			return
		}
		if strings.HasPrefix(st, "exited") {
			break
		}
		<-tick.C
	}
	c.t.Fatalf("%s not healthy after %s (state %s); logs:\n%s", service, since(start), st,
		c.composeQuiet("logs", "--no-color", "--tail", "30", service))
}

// container is the container id of a service.
func (c *cluster) container(service string) string {
	c.t.Helper()
	id := strings.TrimSpace(c.compose("ps", "-q", service))
	if id == "" {
		c.t.Fatalf("no container for service %s", service)
	}
	c.names[id] = service
	return id
}

// compose runs a compose command and fails the test if it fails.
func (c *cluster) compose(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// composeQuiet runs a compose command whose failure does not matter.
func (c *cluster) composeQuiet(args ...string) string {
	out, _ := c.run(args...)
	return out
}

func (c *cluster) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	argv := append(slices.Clone(c.composeCmd[1:]), "-p", project, "-f", filepath.Join(c.root, "docker-compose.yml"))
	cmd := exec.CommandContext(ctx, c.composeCmd[0], append(argv, args...)...)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), c.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// docker runs a docker command and fails the test if it fails.
func (c *cluster) docker(args ...string) {
	c.t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.t.Logf("docker %s (t+%s)", strings.Join(c.named(args), " "), since(c.start))
}

// named replaces container ids by service names in a logged command line.
func (c *cluster) named(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if s, ok := c.names[a]; ok {
			out[i] = s
		}
	}
	return out
}

// want checks that both monitors in v say every id is in state.
func (v view) want(ids []string, state string) error {
	for m := range v {
		if err := v.wantOne(m, ids, state); err != nil {
			return err
		}
	}
	return nil
}

func (v view) wantOne(m string, ids []string, state string) error {
	for _, id := range ids {
		p, ok := v[m][id]
		if !ok {
			return fmt.Errorf("%s does not know %s", m, id)
		}
		if p.State.String() != state {
			return fmt.Errorf("%s says %s is %s, want %s", m, id, p.State, state)
		}
	}
	return nil
}

// String renders one line per monitor: id=state(age of the last beat).
func (v view) String() string {
	var b strings.Builder
	names := make([]string, 0, len(v))
	for m := range v {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		ids := make([]string, 0, len(v[m]))
		for id := range v[m] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(&b, "    %s:", m)
		for _, id := range ids {
			p := v[m][id]
			age := "-" // restored from memory, not heard since
			if !p.LastBeat.IsZero() {
				age = (time.Duration(p.LastBeatAgeMS) * time.Millisecond).Round(100 * time.Millisecond).String()
			}
			fmt.Fprintf(&b, " %s=%s(%s)", id, p.State, age)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
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

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
