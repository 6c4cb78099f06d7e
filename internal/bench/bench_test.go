package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/bench"
)

func TestMain(m *testing.M) {
	// The scale bench re-runs this binary as its publisher child.
	if os.Getenv(bench.ChildEnv) == "1" {
		i := slices.Index(os.Args, "_publisher")
		if i < 0 {
			os.Exit(2)
		}
		if err := bench.Run(context.Background(), "_publisher", os.Args[i+1:], os.Stdout, os.Stderr); err != nil {
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
	cases := []struct {
		name string
		args []string
		keys []string
		want map[string]any // exact values for some keys
	}{
		{"ingest", nil, ingestKeys, map[string]any{"mode": "parked", "dropped": 0.0}},
		{"ingest", []string{"-live"}, ingestKeys, map[string]any{"mode": "live", "dropped": 0.0}},
		{"detect", nil, []string{"bench", "p50_overshoot_ms", "p99_overshoot_ms", "max_overshoot_ms",
			"p99_overshoot_last_beat_ms", "false_deaths", "missed", "detected"}, nil},
		{"scale", nil, []string{"bench", "runs", "churn", "method"}, nil},
		{"probe", nil, []string{"bench", "p50_hbmesh_us", "p50_bare_us", "ratio"}, nil},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append([]string{tc.name}, tc.args...), " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if err := bench.Run(ctx, tc.name, append([]string{"-quick"}, tc.args...), &stdout, &stderr); err != nil {
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
			if tc.name == "scale" {
				runs, _ := got["runs"].([]any)
				if len(runs) != 2 {
					t.Fatalf("scale: want 2 runs in quick mode, got %v", got["runs"])
				}
				for _, k := range []string{"n", "cores", "ns_per_beat", "bytes_per_peer", "heap_bytes", "rss_bytes"} {
					if _, ok := runs[0].(map[string]any)[k]; !ok {
						t.Errorf("scale run lacks %q", k)
					}
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"", nil},
		{"nope", nil},
		{"ingest", []string{"-no-such-flag"}},
		{"detect", []string{"-k", "5", "-n", "2"}},
		{"scale", []string{"-n", "ten"}},
		{"probe", []string{"extra"}},
		{"node", []string{"-interval", "10ms"}},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		err := bench.Run(context.Background(), tc.name, tc.args, &stdout, &stderr)
		if !errors.Is(err, bench.ErrUsage) {
			t.Errorf("Run(%q, %q) = %v, want ErrUsage", tc.name, tc.args, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("Run(%q, %q) wrote to stdout: %q", tc.name, tc.args, stdout.String())
		}
	}
}

func TestNames(t *testing.T) {
	want := []string{"ingest", "detect", "scale", "probe", "node"}
	if got := bench.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
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
	if err := bench.Run(ctx, "node", []string{"-quick", "-exe", bin}, &stdout, &stderr); err != nil {
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
