package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
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
		{"detect", []string{"-crash"}, []string{"bench", "n", "k", "intervals", "false_deaths", "false_deaths_fast_path",
			"false_deaths_timeout_path", "checks", "advisories", "reconnect_window_ms"}, map[string]any{"mode": "crash", "reconnect_window_ms": 350.0}},
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
	want := []string{"ingest", "detect", "scale", "probe"}
	if got := bench.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}
