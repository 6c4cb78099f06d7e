// Package promtest runs the real Prometheus tools for tests: an
// Alertmanager (Debian's prometheus-alertmanager) with a webhook receiver
// the test reads, promtool (from Debian's prometheus) and amtool (from
// prometheus-alertmanager). Without a tool a test is skipped, loudly,
// except under CI, which must run it.
package promtest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// tool returns the binary to run: $env when set, else the first of names
// on PATH. Without one the test fails under CI and is skipped elsewhere.
func tool(t testing.TB, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	pkg := map[string]string{"promtool": "prometheus", "amtool": "prometheus-alertmanager", "prometheus-alertmanager": "prometheus-alertmanager"}[names[0]]
	how := "no " + names[0] + " found: install it with `apt-get install -y " + pkg + "` (Debian) or point " + env + " at the binary"
	if os.Getenv("CI") != "" {
		t.Fatal(how)
	}
	t.Skip("SKIPPING: " + how)
	return ""
}

// Promtool runs promtool with args, stdin as its standard input, and
// returns its combined output and whether it exited 0.
func Promtool(t testing.TB, stdin []byte, args ...string) (string, bool) {
	t.Helper()
	return run(t, tool(t, "PROMTOOL_PATH", "promtool"), stdin, args)
}

// Amtool runs Alertmanager's amtool with args and returns its combined
// output and whether it exited 0.
func Amtool(t testing.TB, args ...string) (string, bool) {
	t.Helper()
	return run(t, tool(t, "AMTOOL_PATH", "amtool"), nil, args)
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
