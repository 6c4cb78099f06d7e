package natstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Tool returns the path of an external binary a test drives as a real
// client, such as the standalone nats-server or the nats CLI. It looks in
// $HBMESH_TOOLS (set by `make test`), in the repository's bin/tools (where
// `make tools` installs them), on PATH and in $(go env GOPATH)/bin. When
// the tool is missing the test fails under CI, which must have it, and is
// skipped with the install command elsewhere.
func Tool(t testing.TB, name string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("HBMESH_TOOLS"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			dirs = append(dirs, filepath.Join(filepath.Dir(mod), "bin", "tools"))
		}
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, gp := range filepath.SplitList(strings.TrimSpace(string(out))) {
			if p := filepath.Join(gp, "bin", name); isExecutable(p) {
				return p
			}
		}
	}
	msg := name + " not found; install it with `make tools`"
	if os.Getenv("CI") != "" {
		t.Fatal("natstest: " + msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

// SystemTool returns the path of a program a test runs that comes from a
// Debian package (pkg) rather than from the Go module proxy: $env when env
// is not "" and set, else the first of names on PATH. When none is found
// the test fails under CI, which installs pkg, and is skipped with the
// install command elsewhere.
func SystemTool(t testing.TB, pkg, env string, names ...string) string {
	t.Helper()
	if env != "" {
		if p := os.Getenv(env); p != "" {
			return p
		}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := names[0] + " not found; install it with `apt-get install " + pkg + "` (Debian)"
	if env != "" {
		msg += " or point " + env + " at it"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("natstest: " + msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
