package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/pause"
	"github.com/hbmesh/hbmesh/internal/redact"
)

// invalid names the options in their errors, which name the flag: Run
// returns such a configuration error (cfgerr) for options out of range.
const invalid cfgerr.Of = "bench"

// Benchmark is the options of one benchmark: IngestOptions,
// DetectOptions, ScaleOptions or ProbeOptions. Its zero sizes are
// rejected unless Quick is set, which chooses small ones.
type Benchmark interface {
	run(ctx context.Context, e *env) error
}

// Run runs the benchmark b, writes progress to stderr and one JSON summary
// line to stdout. Options out of range yield a configuration error
// (matching cfgerr.ErrInvalid) that names the flag, before anything runs.
func Run(ctx context.Context, b Benchmark, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, nil))}
	return b.run(ctx, e)
}

// env is what a benchmark may touch of the outside world.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

// Common are the options every benchmark takes.
type Common struct {
	// URL is the NATS server to use; empty starts an embedded server on a
	// random loopback port.
	URL string
	// Quick is a small and short run for CI; it overrides the size
	// options.
	Quick bool
	// CPUProfile, when set, is the file a CPU profile of this process
	// (server, publisher and consumers alike) is written to.
	CPUProfile string

	// meshAccount gives the embedded server hbmesh server's mesh account,
	// whose clients see their DISCONNECT advisories.
	meshAccount bool
	// embedded is the server that server started, nil with URL.
	embedded *embedded.Server
}

// server returns the URL to use, starting an embedded server unless one
// was given. stop shuts down what was started.
// When CPUProfile is set, profiling runs from here until stop.
func (c *Common) server() (url string, stop func(), err error) {
	stopProfile := func() {}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return "", nil, fmt.Errorf("bench: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("bench: cpu profile: %w", err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	if c.URL != "" {
		return c.URL, stopProfile, nil
	}
	s, err := startServer(c.meshAccount)
	if err != nil {
		stopProfile()
		return "", nil, err
	}
	c.embedded = s
	return s.ClientURL(), func() { s.Shutdown(); stopProfile() }, nil
}

func startServer(meshAccount bool) (*embedded.Server, error) {
	cfg := embedded.DefaultConfig()
	cfg.Port = embedded.RandomPort
	if meshAccount {
		cfg.MeshAccount = embedded.DefaultMeshAccount
	}
	cfg.Options = func(o *server.Options) {
		// The ingest bench parks whole batches in the server's outbound
		// buffer of a paused consumer; the default 64MB is enough for the
		// defaults but not for larger --nodes × --batches.
		o.MaxPending = 1 << 30
		o.WriteDeadline = 30 * time.Second
		o.MaxPayload = 1 << 20
	}
	s, err := embedded.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: embedded server: %w", err)
	}
	if err := s.Start(); err != nil {
		return nil, fmt.Errorf("bench: embedded server: %w", err)
	}
	return s, nil
}

func connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(0)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s to %s: %w", name, redact.URL(url), err)
	}
	return nc, nil
}

// emit writes v as the single JSON summary line.
func (e *env) emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bench: encode summary: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// quantile returns the q-quantile (nearest rank) of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// round3 keeps JSON figures readable.
func round3(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return -1
	}
	return math.Round(x*1000) / 1000
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapInuse is HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// waitFor polls cond every millisecond until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: timed out after %v waiting for %s", timeout, what)
		}
		if err := pause.For(ctx, time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
