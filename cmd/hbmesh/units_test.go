package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

// unitsDir holds the systemd units the packages ship.
const unitsDir = "../../deploy/systemd"

// installedBinary is where the packages install hbmesh and where the
// units' ExecStart looks for it.
const installedBinary = "/usr/bin/hbmesh"

// systemdAnalyze returns the path of systemd-analyze.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	return natstest.SystemTool(t, "systemd", "", "systemd-analyze")
}

// TestSystemdUnitsVerify runs `systemd-analyze verify` on the shipped
// units. verify also checks that ExecStart's binary exists and is
// executable; this machine has no /usr/bin/hbmesh, so each copy's
// ExecStart points at this test binary instead (the package check in `make
// dist-check` verifies the units against the packaged binary). Man pages
// are not looked up here for the same reason. verify exits 0 on an
// unknown or misspelt key and only warns, so any output fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, err := filepath.Glob(filepath.Join(unitsDir, "*.service"))
	if err != nil || len(units) != len(envFiles) {
		t.Fatalf("want the node, monitor and notify units in %s, found %v (%v)", unitsDir, units, err)
	}
	dir := t.TempDir()
	args := []string{"verify", "--man=no"}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("\nExecStart="+installedBinary+" ")) {
			t.Fatalf("%s: ExecStart does not run %s", u, installedBinary)
		}
		b = bytes.ReplaceAll(b, []byte(installedBinary), []byte(exe))
		dst := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	out, err := exec.Command(sa, args...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze %v: %v\n%s", args, err, out)
	}
}

// envFiles are the environment files the packages install as
// /etc/default/<unit name>, by the command their unit runs.
var envFiles = map[string]string{
	"node":    filepath.Join(unitsDir, "hbmesh-node.env"),
	"monitor": filepath.Join(unitsDir, "hbmesh-monitor.env"),
	"notify":  filepath.Join(unitsDir, "hbmesh-notify.env"),
}

// assignment is a VAR=value line of an environment file or an
// Environment= setting, commented out or not.
var assignment = regexp.MustCompile(`^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)

// commandEnvs returns the environment variables the flags of the
// subcommand name, one of serviceCommands, read, as `hbmesh <name> --help`
// lists them.
func commandEnvs(t *testing.T, name string) map[string]bool {
	t.Helper()
	envs := map[string]bool{}
	serviceFlags(t, func(cmd string, f *kong.Flag) {
		if cmd == name && !f.Hidden {
			for _, ev := range f.Envs {
				envs[ev] = true
			}
		}
	})
	if len(envs) == 0 {
		t.Fatalf("hbmesh %s: no flag reads a variable", name)
	}
	return envs
}

// TestEnvironmentFilesShowEverySetting: each environment file shows every
// variable its command reads, commented out, and nothing else; every
// default its unit sets with Environment= is one of them. Defaults are
// the unit's: the file is the operator's, which an upgrade keeps as it is.
func TestEnvironmentFilesShowEverySetting(t *testing.T) {
	for cmd, file := range envFiles {
		t.Run(cmd, func(t *testing.T) {
			want := commandEnvs(t, cmd)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			shown := map[string]bool{}
			for i, line := range strings.Split(string(b), "\n") {
				m := assignment.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				if !want[m[2]] {
					t.Errorf("%s:%d: %s is not a variable of hbmesh %s", file, i+1, m[2], cmd)
				}
				if m[1] == "" {
					t.Errorf("%s:%d: %s is set: give the unit an Environment= default, and show it here commented out", file, i+1, m[2])
				}
				shown[m[2]] = true
			}
			for v := range want {
				if !shown[v] {
					t.Errorf("%s does not show %s, a variable of hbmesh %s", file, v, cmd)
				}
			}
			unit, err := os.ReadFile(filepath.Join(unitsDir, "hbmesh-"+cmd+".service"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(unit), "\n") {
				if rest, ok := strings.CutPrefix(line, "Environment="); ok {
					if m := assignment.FindStringSubmatch(rest); m == nil || !want[m[2]] {
						t.Errorf("hbmesh-%s.service: %q sets no variable of hbmesh %s", cmd, line, cmd)
					}
				}
			}
		})
	}
}

// unitEnv is the environment systemd gives the command of unit cmd: the
// unit's Environment= settings (with %S, the state directory root, as
// stateRoot), then the uncommented lines of its environment file, then
// set, which stands for the lines an operator uncomments or adds. Each
// later source overrides the earlier ones, as in systemd.
func unitEnv(t *testing.T, cmd, stateRoot string, set map[string]string) map[string]string {
	t.Helper()
	environ := map[string]string{}
	unit, err := os.ReadFile(filepath.Join(unitsDir, "hbmesh-"+cmd+".service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, "Environment="); ok {
			if m := assignment.FindStringSubmatch(strings.ReplaceAll(rest, "%S", stateRoot)); m != nil {
				environ[m[2]] = m[3]
			}
		}
	}
	file, err := os.ReadFile(envFiles[cmd])
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(file), "\n") {
		if m := assignment.FindStringSubmatch(line); m != nil && m[1] == "" {
			environ[m[2]] = m[3]
		}
	}
	for k, v := range set {
		environ[k] = v
	}
	return environ
}

// TestUnitsWorkWithShippedAuth runs `hbmesh monitor`, `hbmesh node` and
// `hbmesh notify` with the environment their units and environment files
// give them, plus only the server URL, each one's user, the monitor's
// event stream and notify's hook, against a server with JetStream running
// the shipped deploy/auth/users.conf. The monitor's probes are answered
// (its inbox prefix, the unit's default, is the one its permissions
// allow), its events are published and kept in the stream, and it keeps
// its restart memory in the unit's state directory; notify runs its hook
// for a node's goodbye (its inbox prefix is its unit's default too); none
// logs a permission violation.
func TestUnitsWorkWithShippedAuth(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.ConfigFile = "../../deploy/auth/users.conf"
		c.JetStream, c.StoreDir = true, t.TempDir()
	})
	url := srv.ClientURL()
	login := func(user string) map[string]string {
		return map[string]string{"NATS_URL": url, "NATS_USER": user, "NATS_PASSWORD": user + "-example-password"}
	}

	// An operator's view of the events, under the read-only ops user.
	ops := natstest.Connect(t, url, nats.UserInfo("ops", "ops-example-password"), nats.CustomInboxPrefix("_INBOX_ops"))
	events := make(chan *nats.Msg, 64)
	if _, err := ops.ChanSubscribe("hb.events.>", events); err != nil {
		t.Fatal(err)
	}
	if err := ops.Flush(); err != nil {
		t.Fatal(err)
	}
	waitEvent := func(id string, state monitor.State, reason monitor.Reason) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case m := <-events:
				ev, _, err := monitor.DecodeEvent(m.Data)
				if err != nil {
					t.Fatalf("event on %s: %v: %s", m.Subject, err, m.Data)
				}
				if ev.ID == id && ev.State == state && ev.Reason == reason {
					return
				}
			case <-timeout:
				t.Fatalf("no event %s %s (%s) within 20s", id, state, reason)
			}
		}
	}

	state := t.TempDir()
	if err := os.Mkdir(filepath.Join(state, "hbmesh"), 0o750); err != nil { // StateDirectory=hbmesh
		t.Fatal(err)
	}
	monEnv := unitEnv(t, "monitor", state, login("monitor1"))
	monEnv["HBMESH_HTTP"] = "" // the unit's 127.0.0.1:8080 may be taken here; empty turns it off
	monEnv["HBMESH_EVENTS_STREAM"] = "HBEVENTS"
	mon := startEnv(t, monEnv, "monitor")
	natstest.WaitInterest(t, srv, "hb.anything")
	waitFor(t, 10*time.Second, "the event stream", func() bool { return strings.Contains(mon.stderr.String(), `"msg":"event stream created"`) })

	hookLog := filepath.Join(t.TempDir(), "hook.log")
	notifyEnv := unitEnv(t, "notify", state, login("notify1"))
	notifyEnv["HBMESH_ON_EVENT"] = `echo "$HBMESH_PEER_ID $HBMESH_STATE" >> "` + hookLog + `"`
	notifyEnv["HBMESH_ON_EVENT_STATES"] = "left"
	ntf := startEnv(t, notifyEnv, "notify")
	waitFor(t, 10*time.Second, "notify to start", func() bool { return strings.Contains(ntf.stderr.String(), `"msg":"notify started"`) })

	nodeEnv := unitEnv(t, "node", state, login("node-a"))
	nodeEnv["HBMESH_ID"] = "node-a" // the user's name, as the permissions want
	nodeA := startEnv(t, nodeEnv, "node")
	waitEvent("node-a", monitor.StateAlive, monitor.ReasonFirstBeat)

	// node-b stops beating but stays connected: the monitor probes it, and
	// its answer reaches the monitor's inbox.
	var silent atomic.Bool
	ncfg := node.DefaultConfig()
	ncfg.ID = "node-b"
	ncfg.DropBeat = func(uint64) bool { return silent.Load() }
	n, err := node.New(natstest.Connect(t, url, nats.UserInfo("node-b", "node-b-example-password")), ncfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "node-b", n.Run)
	waitEvent("node-b", monitor.StateAlive, monitor.ReasonFirstBeat)
	silent.Store(true)
	waitEvent("node-b", monitor.StateSuspect, monitor.ReasonSilent)
	waitEvent("node-b", monitor.StateAlive, monitor.ReasonProbeAnswered)

	if code := nodeA.stop(t); code != exitOK {
		t.Errorf("node exit %d; stderr:\n%s", code, nodeA.stderr)
	}
	waitEvent("node-a", monitor.StateLeft, monitor.ReasonGoodbye)
	waitFor(t, 10*time.Second, "notify's hook", func() bool { return readFile(t, hookLog) == "node-a left\n" })
	if code := ntf.stop(t); code != exitOK {
		t.Errorf("notify exit %d; stderr:\n%s", code, ntf.stderr)
	}
	if code := mon.stop(t); code != exitOK {
		t.Errorf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
	memory, err := os.ReadFile(filepath.Join(state, "hbmesh", "monitor-peers.json"))
	if err != nil || !bytes.Contains(memory, []byte(`"node-b"`)) {
		t.Errorf("restart memory in the state directory: %v\n%s", err, memory)
	}
	for name, p := range map[string]*proc{"monitor": mon, "node": nodeA, "notify": ntf} {
		if strings.Contains(p.stderr.String(), "Permissions Violation") {
			t.Errorf("%s logged a permission violation:\n%s", name, p.stderr)
		}
	}
}

// TestUnitMemorySettings: each restart memory the monitor's environment
// file offers works under the unit, whose own default is a state file in
// its state directory: HBMESH_NO_MEMORY=true keeps none, a
// HBMESH_MEMORY_BUCKET keeps it in that bucket, an empty
// HBMESH_STATE_FILE in the default bucket. A --state-file on the command
// line does not yield to them.
func TestUnitMemorySettings(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) { c.JetStream, c.StoreDir = true, t.TempDir() })
	js, err := jetstream.New(natstest.ConnectServer(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	buckets := func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var names []string
		l := js.KeyValueStoreNames(ctx)
		for n := range l.Name() {
			names = append(names, n)
		}
		if err := l.Error(); err != nil {
			t.Fatal(err)
		}
		return names
	}
	for _, tc := range []struct {
		name    string
		set     map[string]string
		file    bool   // the unit's state file is written
		bucket  string // the bucket the memory is in, if any
		skipped bool   // no restart memory
	}{
		{"unit default", nil, true, "", false},
		{"no memory", map[string]string{"HBMESH_NO_MEMORY": "true"}, false, "", true},
		{"memory bucket", map[string]string{"HBMESH_MEMORY_BUCKET": "membucket"}, false, "membucket", false},
		{"empty state file", map[string]string{"HBMESH_STATE_FILE": ""}, false, "hbmesh_hb_peers", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			if err := os.Mkdir(filepath.Join(state, "hbmesh"), 0o750); err != nil {
				t.Fatal(err)
			}
			environ := unitEnv(t, "monitor", state, tc.set)
			environ["NATS_URL"], environ["HBMESH_HTTP"] = srv.ClientURL(), ""
			before := buckets()
			mon := startEnv(t, environ, "monitor", "--id", "m-"+strings.ReplaceAll(tc.name, " ", "-"))
			waitFor(t, 10*time.Second, "the monitor to start", func() bool {
				return strings.Contains(mon.stderr.String(), `"msg":"monitor started"`) || len(mon.done) > 0
			})
			if code := mon.stop(t); code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", code, mon.stderr)
			}
			_, err := os.Stat(filepath.Join(state, "hbmesh", "monitor-peers.json"))
			if written := err == nil; written != tc.file {
				t.Errorf("state file written: %v, want %v", written, tc.file)
			}
			if loaded := strings.Contains(mon.stderr.String(), `"msg":"restart memory loaded"`); loaded == tc.skipped {
				t.Errorf("restart memory loaded: %v, want %v; stderr:\n%s", loaded, !tc.skipped, mon.stderr)
			}
			if tc.bucket != "" && !slices.Contains(buckets(), tc.bucket) {
				t.Errorf("buckets %q, want %s among them", buckets(), tc.bucket)
			}
			if tc.bucket == "" && len(buckets()) != len(before) {
				t.Errorf("buckets %q, was %q: want no new one", buckets(), before)
			}
		})
	}

	environ := unitEnv(t, "monitor", t.TempDir(), map[string]string{"HBMESH_NO_MEMORY": "true"})
	code, _, stderr := runSync(t, func(k string) string { return environ[k] }, "monitor", "--state-file", filepath.Join(t.TempDir(), "p.json"))
	if want := "hbmesh monitor: $HBMESH_NO_MEMORY and --state-file are exclusive\n"; code != exitUsage || stderr != want {
		t.Errorf("--state-file with $HBMESH_NO_MEMORY: exit %d, stderr %q; want exit %d, %q", code, stderr, exitUsage, want)
	}
}
