package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// unitsDir holds the systemd units the packages ship.
const unitsDir = "../../deploy/systemd"

// installedBinary is where the packages install hbmesh and where the
// units' ExecStart looks for it.
const installedBinary = "/usr/bin/hbmesh"

// systemdAnalyze returns the path of systemd-analyze. Without it the test
// fails under CI, which installs it, and is skipped with the install
// command elsewhere.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("systemd-analyze"); err == nil {
		return p
	}
	const how = "systemd-analyze not found: install it with `apt-get install systemd` (Debian)"
	if os.Getenv("CI") != "" {
		t.Fatal(how)
	}
	t.Skip("SKIP: " + how)
	return ""
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
	if err != nil || len(units) != 2 {
		t.Fatalf("want the node and monitor units in %s, found %v (%v)", unitsDir, units, err)
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
