package sectest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/hbmesh/hbmesh/monitor"
)

// exitWithin bounds how long a refused hbmesh may take to give up.
const exitWithin = 10 * time.Second

// buildCLI builds cmd/hbmesh into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "hbmesh")
	build := exec.Command("go", "build", "-o", bin, "./cmd/hbmesh")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hbmesh: %v\n%s", err, out)
	}
	return bin
}

// TestCLIAuth drives the real hbmesh binary against a server running the
// users template.
func TestCLIAuth(t *testing.T) {
	bin := buildCLI(t)
	url := startServer(t, usersConf).ClientURL()
	nkeysURL := startServer(t, nkeysConf).ClientURL()
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := stranger.Seed()
	if err != nil {
		t.Fatal(err)
	}
	strangerSeed := filepath.Join(t.TempDir(), "stranger.nk")
	if err := os.WriteFile(strangerSeed, seed, 0o600); err != nil {
		t.Fatal(err)
	}

	// A node or monitor refused by the server's authentication exits
	// promptly, non-zero, with a one-line reason, instead of retrying.
	refused := []struct {
		name string
		args []string
	}{
		{"node wrong password", []string{"node", "-s", url, "--user", "node-a", "--password", "WRONG", "--id", "node-a"}},
		{"monitor wrong password", []string{"monitor", "-s", url, "--user", "monitor1", "--password", "WRONG"}},
		{"node no credentials", []string{"node", "-s", url, "--id", "node-a"}},
		{"node unknown nkey", []string{"node", "-s", nkeysURL, "--nkey", strangerSeed, "--id", "node-a"}},
		{"monitor unknown nkey", []string{"monitor", "-s", nkeysURL, "--nkey", strangerSeed}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), exitWithin)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = cleanEnv()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("still running after %v (killed); stderr:\n%s", exitWithin, stderr.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit code; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || lines[0] == "" {
				t.Fatalf("stderr has %d lines, want exactly one:\n%s", len(lines), stderr.String())
			}
			if !strings.Contains(strings.ToLower(lines[0]), "authorization") {
				t.Fatalf("stderr %q does not mention authorization", lines[0])
			}
			t.Logf("exit %d after %v: %s", ee.ExitCode(), time.Since(start).Round(time.Millisecond), lines[0])
		})
	}

	// With its own credentials, a CLI node beats within its grants and
	// says goodbye on SIGINT.
	t.Run("node allowed", func(t *testing.T) {
		mon := connect(t, url, forms()[0].login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
		_, rec := startMonitor(t, mon.Conn)
		cmd := exec.Command(bin, "node", "-s", url, "--user", "node-a", "--password", "node-a-example-password",
			"--id", "node-a", "--interval", interval.String())
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
		})
		i := rec.waitFor(t, 0, "node-a", monitor.StateAlive, monitor.ReasonFirstBeat)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			if err != nil {
				t.Fatalf("node exited with %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(exitWithin):
			t.Fatalf("node still running %v after SIGINT; stderr:\n%s", exitWithin, stderr.String())
		}
		rec.waitFor(t, i, "node-a", monitor.StateLeft, monitor.ReasonGoodbye)
		if strings.Contains(strings.ToLower(stderr.String()), "permission") {
			t.Fatalf("node hit a permission violation:\n%s", stderr.String())
		}
	})
}

// cleanEnv is the environment without NATS_* variables, so the developer's
// own NATS context cannot leak into the command line under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	return env
}
