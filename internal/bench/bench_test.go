package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/bench"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) {
	// The scale bench re-runs this binary as its publisher child.
	if spec := os.Getenv(bench.ChildEnv); spec != "" {
		if err := bench.Child(context.Background(), spec, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestQuick runs every benchmark in quick mode and checks the shape of its
// one JSON line, not its figures: timing belongs in benchmarks, not tests.
func TestQuick(t *testing.T) {
	ingestKeys := []string{"bench", "bare_msgs_per_sec", "monitor_msgs_per_sec", "ratio", "ratios", "dropped", "rejected", "mode"}
	quick := bench.Common{Quick: true}
	cases := []struct {
		name  string
		bench bench.Benchmark
		keys  []string
		want  map[string]any // exact values for some keys
	}{
		{"ingest", bench.IngestOptions{Common: quick}, ingestKeys, map[string]any{"mode": "parked", "dropped": 0.0}},
		{"ingest", bench.IngestOptions{Common: quick, Live: true}, ingestKeys, map[string]any{"mode": "live", "dropped": 0.0}},
		{"detect", bench.DetectOptions{Common: quick}, []string{"bench", "p50_overshoot_ms", "p99_overshoot_ms", "max_overshoot_ms",
			"p99_overshoot_last_beat_ms", "false_deaths", "missed", "detected"}, nil},
		{"detect", bench.DetectOptions{Common: quick, Crash: true}, []string{"bench", "mode", "n", "k", "intervals", "false_deaths",
			"false_deaths_fast_path", "false_deaths_timeout_path", "bounced", "checks", "advisories", "reconnect_window_ms", "run_s"},
			map[string]any{"mode": "crash", "reconnect_window_ms": 350.0}},
		{"scale", bench.ScaleOptions{Common: quick, Labels: map[string]string{"role": "web"}}, []string{"bench", "runs", "churn", "method", "labels"}, nil},
		{"probe", bench.ProbeOptions{Common: quick}, []string{"bench", "p50_hbmesh_us", "p50_bare_us", "ratio"}, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %+v", tc.name, tc.bench), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if err := bench.Run(ctx, tc.bench, &stdout, &stderr); err != nil {
				t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("want exactly one stdout line, got %d:\n%s", len(lines), stdout.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatalf("summary is not JSON: %v\n%s", err, lines[0])
			}
			for _, k := range tc.keys {
				if _, ok := got[k]; !ok {
					t.Errorf("summary lacks %q: %s", k, lines[0])
				}
			}
			if got["bench"] != tc.name {
				t.Errorf("bench = %v, want %q", got["bench"], tc.name)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if got["mode"] == "crash" {
				// Quick mode kicks 10 live nodes.
				b, _ := got["bounced"].(map[string]any)
				for _, k := range []string{"peers", "kicked", "reconnected", "false_deaths_fast_path", "false_deaths_timeout_path"} {
					if _, ok := b[k]; !ok {
						t.Errorf("crash: bounced lacks %q: %v", k, got["bounced"])
					}
				}
				if b["peers"] != 10.0 {
					t.Errorf("crash: bounced peers %v, want 10", b["peers"])
				}
			}
			if tc.name == "scale" {
				runs, _ := got["runs"].([]any)
				if len(runs) != 2 {
					t.Fatalf("scale: want 2 runs in quick mode, got %v", got["runs"])
				}
				for _, k := range []string{"n", "cores", "ns_per_beat", "bytes_per_peer", "heap_bytes", "rss_bytes", "beat_bytes", "in_bytes_per_sec"} {
					if _, ok := runs[0].(map[string]any)[k]; !ok {
						t.Errorf("scale run lacks %q", k)
					}
				}
				// The payload the monitor received is measured: a beat like
				// the simulated fleet's, with its label, is within a few
				// bytes of it (ids and sequence numbers vary in length), and
				// one that lost "labels":{"role":"web"} is 23 bytes short.
				want := float64(len(wire.AppendBeat(nil, &wire.Beat{V: wire.Version, ID: "scale-500", Host: "sim.example.com",
					PID: 4242, Boot: "0123456789abcdef", Seq: 10, TS: time.Now().UTC(), IntervalMS: 1000,
					Status: wire.StatusAlive, Version: "v0.0.0-bench", Labels: map[string]string{"role": "web"}})))
				if b, _ := runs[0].(map[string]any)["beat_bytes"].(float64); b < want-8 || b > want+8 {
					t.Errorf("scale: beat_bytes %v, want about %v, a beat with the label", b, want)
				}
			}
		})
	}
}

// TestUsage: options out of range are configuration errors that name
// the flag to fix, and nothing runs.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		b    bench.Benchmark
		want string
	}{
		{bench.IngestOptions{N: 10, Batches: 1, Windows: 0, Rounds: 1}, "--windows 0 must be positive"},
		{bench.DetectOptions{N: 2, K: 5, Interval: time.Second}, "--kills 5 must be within [0, --nodes 2]"},
		{bench.DetectOptions{N: 2, K: 1, Interval: time.Millisecond}, "--interval 1ms is below 100ms"},
		{bench.DetectOptions{N: 100, K: 1, Crash: true, Intervals: []time.Duration{time.Second, 2 * time.Second}},
			"--kills 1 with --crash must be within [2, 100]"},
		{bench.DetectOptions{N: 100, K: 2, Crash: true, Intervals: []time.Duration{time.Millisecond}}, "--intervals 1ms is below 100ms"},
		{bench.ScaleOptions{Nodes: []int{0}, Measure: time.Second, Interval: time.Second}, "--nodes 0 is not a peer count"},
		{bench.ScaleOptions{Measure: time.Second, Interval: time.Second}, "--nodes names no peer count"},
		{bench.DetectOptions{Common: bench.Common{URL: "nats://127.0.0.1:1"}, N: 10, K: 2, Crash: true, Bounced: 2}, "--bounced 2 needs the embedded server"},
		{bench.ProbeOptions{Count: 0}, "--count 0 must be positive"},
		{bench.NodeOptions{Interval: 10 * time.Millisecond}, "--interval 10ms is below 100ms"},
	} {
		var stdout, stderr bytes.Buffer
		err := bench.Run(context.Background(), tc.b, &stdout, &stderr)
		if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want a configuration error saying %q", tc.b, err, tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("Run(%+v) wrote to stdout: %q", tc.b, stdout.String())
		}
	}
}

// TestQuickNode runs the node benchmark in quick mode against a freshly
// built hbmesh and checks the shape of its summary: a node that beat, the
// binary idle beside it, figures read from /proc.
func TestQuickNode(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "hbmesh")
	build := exec.Command("go", "build", "-o", bin, "./cmd/hbmesh")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hbmesh: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := bench.Run(ctx, bench.NodeOptions{Common: bench.Common{Quick: true}, Exe: bin}, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
	}
	var got struct {
		Bench string `json:"bench"`
		Beat  string `json:"beat"`
		Runs  []struct {
			Name      string `json:"name"`
			RSS       uint64 `json:"rss_bytes"`
			Anon      uint64 `json:"rss_anon_bytes"`
			CPU       int64  `json:"cpu_ns"`
			Beats     int    `json:"beats"`
			BeatBytes int    `json:"beat_bytes"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout.String())
	}
	if got.Bench != "node" || len(got.Runs) != 2 {
		t.Fatalf("want bench node with 2 runs (node, idle): %s", stdout.String())
	}
	n, idle := got.Runs[0], got.Runs[1]
	if n.Name != "hbmesh node" || idle.Name != "hbmesh idle" {
		t.Fatalf("runs %q, %q; want hbmesh node, hbmesh idle", n.Name, idle.Name)
	}
	if n.Beats < 1 || n.BeatBytes != len(got.Beat) || n.RSS == 0 || n.Anon == 0 || n.CPU <= 0 || idle.RSS == 0 {
		t.Errorf("implausible figures: %s", stdout.String())
	}
}
