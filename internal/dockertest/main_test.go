//go:build docker

package dockertest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain runs the test only where a Docker engine answers. Where none
// does, it says so in one line and succeeds: the test cannot run there,
// and CI machines without Docker must not fail. Where one does, it never
// skips.
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := exec.CommandContext(ctx, "docker", "info").Run()
	cancel()
	if err != nil {
		fmt.Println("SKIP: e2e-docker: no Docker engine reachable")
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
