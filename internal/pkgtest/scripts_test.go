//go:build dist

package pkgtest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestMaintainerScripts runs the package's maintainer scripts as dpkg and
// rpm would, each in a mount namespace of its own where /etc is a copy
// and /run and /var/lib are empty, with a systemctl that only records its
// arguments: the host is left as it was. It checks the user and group the
// services run as, that a fresh install enables and starts nothing, that
// an upgrade restarts only running services, and that removal stops and
// disables them.
func TestMaintainerScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root, for a mount namespace")
		}
		t.Skip("SKIP: needs root, for a mount namespace")
	}
	unshare := natstest.SystemTool(t, "util-linux", "", "unshare")
	scriptsDir, err := filepath.Abs(filepath.Join(root, "deploy/package"))
	if err != nil {
		t.Fatal(err)
	}
	// sandbox runs body with the scripts in $S and systemctl's calls
	// logged to $LOG, one line each.
	sandbox := func(t *testing.T, systemd bool, body string) string {
		t.Helper()
		dir := t.TempDir()
		bin := filepath.Join(dir, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >> \"$LOG\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		setup := `set -e
cp -a /etc "$D/etc" && mount --bind "$D/etc" /etc
mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib
`
		if systemd {
			setup += "mkdir -p /run/systemd/system\n"
		}
		log := filepath.Join(dir, "systemctl.log")
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", setup+body)
		cmd.Env = append(os.Environ(), "D="+dir, "S="+scriptsDir, "LOG="+log, "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("user", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "getent")
		sandbox(t, false, `sh "$S/preinstall.sh" install
sh "$S/preinstall.sh" upgrade 0.1      # a second run changes nothing
getent passwd hbmesh > `+out+`
getent group hbmesh >> `+out+`
test "$(getent passwd | grep -c '^hbmesh:')" = 1
`)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 {
			t.Fatalf("getent: %q", b)
		}
		// hbmesh:x:UID:GID:comment:home:shell
		p := strings.Split(lines[0], ":")
		g := strings.Split(lines[1], ":")
		if len(p) != 7 || p[5] != "/var/lib/hbmesh" || !strings.HasSuffix(p[6], "nologin") || len(g) < 3 || p[3] != g[2] {
			t.Errorf("user %q, group %q: want home /var/lib/hbmesh, shell nologin, primary group hbmesh", lines[0], lines[1])
		}
	})

	for _, tc := range []struct {
		name, body, want string
	}{
		{"deb install", `sh "$S/postinstall.sh" configure ""`, "daemon-reload\n"},
		{"rpm install", `sh "$S/postinstall.sh" 1`, "daemon-reload\n"},
		{"deb upgrade", `sh "$S/preremove.sh" upgrade 0.2; sh "$S/postinstall.sh" configure 0.1`,
			"daemon-reload\ntry-restart hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\n"},
		{"rpm upgrade", `sh "$S/postinstall.sh" 2; sh "$S/preremove.sh" 1; sh "$S/postremove.sh" 1`,
			"daemon-reload\ntry-restart hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\ndaemon-reload\n"},
		{"deb remove", `sh "$S/preremove.sh" remove; sh "$S/postremove.sh" remove`,
			"disable --now hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\ndaemon-reload\n"},
		{"rpm remove", `sh "$S/preremove.sh" 0; sh "$S/postremove.sh" 0`,
			"disable --now hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\ndaemon-reload\n"},
		{"deb purge", `mkdir -p /var/lib/hbmesh && touch /var/lib/hbmesh/monitor-peers.json
sh "$S/postremove.sh" purge
test ! -e /var/lib/hbmesh`, "daemon-reload\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sandbox(t, true, tc.body); got != tc.want {
				t.Errorf("systemctl calls:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
	t.Run("without systemd", func(t *testing.T) {
		// In a container or a chroot, no systemctl at all.
		if got := sandbox(t, false, `sh "$S/postinstall.sh" configure 0.1; sh "$S/preremove.sh" remove; sh "$S/postremove.sh" purge`); got != "" {
			t.Errorf("systemctl called without systemd running:\n%s", got)
		}
	})
}
