//go:build linux && !race

package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/nats-io/nats-server/v2/server/pse"
)

// samplerChildEnv marks the child process TestStopServerSampler runs.
const samplerChildEnv = "HBMESH_TEST_SAMPLER_CHILD"

// TestStopServerSampler: after stopServerSampler, nats-server's sampler
// can no longer read its file, so it stops re-arming. It runs in a child
// process, as main does, early: this test process keeps its sampler, for
// the embedded servers of other tests.
func TestStopServerSampler(t *testing.T) {
	if os.Getenv(samplerChildEnv) == "1" {
		var pcpu float64
		var rss, vss int64
		if err := pse.ProcUsage(&pcpu, &rss, &vss); err != nil || rss == 0 {
			t.Fatalf("before: ProcUsage = %v, rss %d; want the sampler's file readable", err, rss)
		}
		stopServerSampler()
		if err := pse.ProcUsage(&pcpu, &rss, &vss); err == nil {
			t.Fatal("after: ProcUsage read its file; the sampler would go on")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopServerSampler$", "-test.count=1")
	cmd.Env = append(os.Environ(), samplerChildEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
