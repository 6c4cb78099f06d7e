package events_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/monitor"
)

func newExec(t *testing.T, cfg events.ExecConfig) *events.Exec {
	t.Helper()
	e, err := events.NewExec(cfg)
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	return e
}

func TestExecConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*events.ExecConfig)
		want string
	}{
		{"command", func(c *events.ExecConfig) { c.Command = "" }, "Command must not be empty"},
		{"timeout", func(c *events.ExecConfig) { c.Timeout = -time.Second }, "Timeout -1s"},
		{"concurrency", func(c *events.ExecConfig) { c.MaxConcurrent = -1 }, "MaxConcurrent -1"},
		{"queue", func(c *events.ExecConfig) { c.QueueSize = -2 }, "QueueSize -2"},
		{"states", func(c *events.ExecConfig) { c.States = []monitor.State{monitor.StateUnknown} }, "States"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := events.DefaultExecConfig("true")
			tc.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestExecEnvAndStdin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HBMESH_TEST_PARENT", "inherited")
	cfg := events.DefaultExecConfig(`env > "$OUT/$HBMESH_STATE.env.tmp" && cat > "$OUT/$HBMESH_STATE.json" && mv "$OUT/$HBMESH_STATE.env.tmp" "$OUT/$HBMESH_STATE.env"`)
	cfg.States = []monitor.State{monitor.StateDead, monitor.StateAlive}
	cfg.MonitorID = "mon-a"
	t.Setenv("OUT", dir)
	e := newExec(t, cfg)
	run(t, "exec", e.Run)

	evs := lifecycle("web-1")
	dead := evs[2]
	dead.Time = time.Date(2025, 3, 1, 12, 0, 2, 123456789, time.UTC)
	e.Handle(dead)
	e.Handle(evs[1]) // suspect: filtered out
	restart := evs[3]
	restart.Restart, restart.PrevBoot, restart.Boot, restart.Reason = true, "boot-web-1", "boot-2", monitor.ReasonRestarted
	e.Handle(restart)

	eventually(t, "both hooks to run", func() bool { return e.Stats().Sent == 2 })
	if st := e.Stats(); st.Failed != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "suspect.env")); err == nil {
		t.Fatal("suspect event ran the hook despite the filter")
	}

	env := readEnv(t, filepath.Join(dir, "dead.env"))
	for k, want := range map[string]string{
		"HBMESH_EVENT":       "dead",
		"HBMESH_PEER_ID":     "web-1",
		"HBMESH_PEER_HOST":   "web-1.example",
		"HBMESH_STATE":       "dead",
		"HBMESH_PREV":        "suspect",
		"HBMESH_REASON":      "timeout",
		"HBMESH_BOOT":        "boot-web-1",
		"HBMESH_SEQ":         "7",
		"HBMESH_RESTART":     "false",
		"HBMESH_MONITOR":     "mon-a",
		"HBMESH_TIME":        "2025-03-01T12:00:02.123456789Z",
		"HBMESH_TEST_PARENT": "inherited",
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "dead.json"))
	if err != nil {
		t.Fatal(err)
	}
	if in, mon, err := monitor.DecodeEvent(data); err != nil || in.ID != "web-1" || in.State != monitor.StateDead || mon != "mon-a" {
		t.Fatalf("stdin %s: %v from %q, %v", data, in, mon, err)
	}

	env = readEnv(t, filepath.Join(dir, "alive.env"))
	if env["HBMESH_EVENT"] != "restart" || env["HBMESH_RESTART"] != "true" || env["HBMESH_PREV"] != "dead" || env["HBMESH_BOOT"] != "boot-2" {
		t.Fatalf("restart env: %v", env)
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	// The shell starts a child that would outlive a kill of the shell
	// alone; killing the process group takes both.
	cfg := events.DefaultExecConfig(`sleep 5 & echo $! > "` + dir + `/child"; echo started >&2; wait`)
	cfg.Timeout = 100 * time.Millisecond
	e := newExec(t, cfg)
	stop := run(t, "exec", e.Run)
	start := time.Now()
	e.Handle(lifecycle("x")[2])
	eventually(t, "the hook to fail", func() bool { return e.Stats().Failed == 1 })
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("timed-out hook took %s to be reaped", took)
	}
	stop()
	data, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// The child was killed with the group; once reaped by init it is gone.
	eventually(t, "the grandchild to be gone", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(b), ") Z ")
	})
	if st := e.Stats(); st.Sent != 0 || st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExecFailureCounted(t *testing.T) {
	e := newExec(t, events.DefaultExecConfig("echo boom >&2; exit 3"))
	run(t, "exec", e.Run)
	e.Handle(lifecycle("x")[0])
	eventually(t, "failure", func() bool { return e.Stats().Failed == 1 })
}

// TestExecConcurrencyBound gates every hook on a release file. With a
// bound of 3, exactly 3 hooks start and wait; each records how many hooks
// were running when it started, counted by marker files.
func TestExecConcurrencyBound(t *testing.T) {
	dir := t.TempDir()
	const limit, total = 3, 10
	script := `cd "` + dir + `" || exit 1
touch "running.$$"
ls running.* | wc -l | tr -d ' ' >> counts
while [ ! -e release ]; do sleep 0.01; done
rm "running.$$"`
	cfg := events.DefaultExecConfig(script)
	cfg.MaxConcurrent = limit
	e := newExec(t, cfg)
	run(t, "exec", e.Run)
	for range total {
		e.Handle(lifecycle("x")[0])
	}
	counts := func() []int {
		data, _ := os.ReadFile(filepath.Join(dir, "counts"))
		var out []int
		for _, f := range strings.Fields(string(data)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}
	eventually(t, "the first hooks to start", func() bool { return len(counts()) == limit })
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every hook to finish", func() bool { return e.Stats().Sent == total })
	got := counts()
	peak := 0
	for _, n := range got {
		peak = max(peak, n)
	}
	if len(got) != total || peak != limit {
		t.Fatalf("concurrent counts %v: peak %d, want %d", got, peak, limit)
	}
}

func TestExecShutdownDropsQueued(t *testing.T) {
	dir := t.TempDir()
	cfg := events.DefaultExecConfig(`touch "` + dir + `/started"; while [ ! -e "` + dir + `/release" ]; do sleep 0.01; done`)
	cfg.MaxConcurrent = 1
	e := newExec(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for range 5 {
		e.Handle(lifecycle("x")[0])
	}
	eventually(t, "the first hook to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, "started"))
		return err == nil
	})
	cancel()
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
	if st := e.Stats(); st.Sent != 1 || st.Dropped != 4 {
		t.Fatalf("stats %+v, want 1 sent (in flight finished) and 4 dropped", st)
	}
}

// TestExecHostWithNUL: a peer chooses its host and boot, and the wire
// admits a NUL (as \u0000). No environment variable can hold one, so the
// hook would not start, and the peer's events would never reach it.
func TestExecHostWithNUL(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OUT", dir)
	e := newExec(t, events.DefaultExecConfig(`env > "$OUT/env.tmp" && mv "$OUT/env.tmp" "$OUT/env"`))
	run(t, "exec", e.Run)
	ev := lifecycle("web-1")[2]
	ev.Host, ev.Boot = "web-1\x00evil", "\x00"
	e.Handle(ev)
	eventually(t, "the hook to run or fail", func() bool { st := e.Stats(); return st.Sent+st.Failed == 1 })
	if st := e.Stats(); st.Sent != 1 {
		t.Fatalf("stats %+v: the hook did not run", st)
	}
	env := readEnv(t, filepath.Join(dir, "env"))
	if env["HBMESH_PEER_HOST"] != "web-1\uFFFDevil" || env["HBMESH_BOOT"] != "\uFFFD" {
		t.Errorf("host %q, boot %q", env["HBMESH_PEER_HOST"], env["HBMESH_BOOT"])
	}
}

// TestHookDieWithCaller: with DieWithCaller, nothing the hook started
// outlives its run (the notify worker's guarantee that a hook cannot
// finish its work once the event went to another worker); without it, a
// background child is left alone, as --on-event always did.
func TestHookDieWithCaller(t *testing.T) {
	for _, die := range []bool{true, false} {
		t.Run(strconv.FormatBool(die), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			h := events.Hook{Command: `sleep 30 >/dev/null 2>&1 & echo $! > "` + pidFile + `"`, Timeout: 10 * time.Second, DieWithCaller: die}
			ev := lifecycle("web-1")[2]
			if stderr, err := h.Run(context.Background(), &ev, "mon-a", nil); err != nil {
				t.Fatalf("Run: %v (%s)", err, stderr)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			alive := func() bool { return syscall.Kill(pid, 0) == nil && !zombie(pid) }
			if die {
				eventually(t, "the hook's background child to be killed", func() bool { return !alive() })
				return
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if !alive() {
				t.Fatal("the background child of a hook without DieWithCaller was killed")
			}
		})
	}
}

// zombie reports whether pid has exited and waits for its reaper.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
