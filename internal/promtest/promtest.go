// Package promtest runs the real Prometheus tools for tests: an
// Alertmanager (Debian's prometheus-alertmanager) with a webhook receiver
// the test reads, promtool (from Debian's prometheus) and amtool (from
// prometheus-alertmanager). Without a tool a test is skipped, loudly,
// except under CI, which must run it.
package promtest

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// Promtool runs promtool with args, stdin as its standard input, and
// returns its combined output and whether it exited 0.
func Promtool(t testing.TB, stdin []byte, args ...string) (string, bool) {
	t.Helper()
	return run(t, natstest.SystemTool(t, "prometheus", "PROMTOOL_PATH", "promtool"), stdin, args)
}

// Amtool runs Alertmanager's amtool with args and returns its combined
// output and whether it exited 0.
func Amtool(t testing.TB, args ...string) (string, bool) {
	t.Helper()
	return run(t, natstest.SystemTool(t, "prometheus-alertmanager", "AMTOOL_PATH", "amtool"), nil, args)
}

func run(t testing.TB, bin string, stdin []byte, args []string) (string, bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%s: %v", bin, err)
		}
		return string(out), false
	}
	return string(out), true
}
