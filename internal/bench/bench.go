package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
)

// ErrUsage is wrapped by every error Run returns for a bad command line: an
// unknown benchmark name or a flag that does not parse.
var ErrUsage = errors.New("usage")

// benchmark is one row of the benchmark table.
type benchmark struct {
	name    string
	summary string
	hidden  bool
	run     func(ctx context.Context, e *env, args []string) error
}

// benchmarks is the table Run dispatches on. A function, not a variable,
// so it cannot be mutated.
func benchmarks() []benchmark {
	return []benchmark{
		{name: "ingest", summary: "monitor vs bare subscriber: messages processed per second", run: runIngest},
		{name: "detect", summary: "dead verdict lateness with N simulated nodes and K silent kills", run: runDetect},
		{name: "scale", summary: "monitor CPU, heap, RSS and ns per beat at N peers; churn", run: runScale},
		{name: "probe", summary: "probe round trip through node.Node vs bare request/reply", run: runProbe},
		{name: publisherMode, hidden: true, run: runPublisher},
	}
}

// Names lists the benchmarks Run accepts, in the order `hbmesh bench`
// should show them.
func Names() []string {
	var out []string
	for _, b := range benchmarks() {
		if !b.hidden {
			out = append(out, b.name)
		}
	}
	return out
}

// Usage writes the list of benchmarks to w.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: hbmesh bench <name> [-s URL] [-quick] [flags]")
	fmt.Fprintln(w, "benchmarks:")
	for _, b := range benchmarks() {
		if !b.hidden {
			fmt.Fprintf(w, "  %-8s %s\n", b.name, b.summary)
		}
	}
	fmt.Fprintln(w, "Each prints progress on stderr and one JSON line on stdout. `hbmesh bench <name> -h` lists its flags.")
}

// Run runs the benchmark called name with its command-line args, writes
// progress to stderr and one JSON summary line to stdout. A bad name or
// flag yields an error wrapping [ErrUsage]; -h yields [flag.ErrHelp]
// (also wrapped in ErrUsage) after printing the flags to stderr.
func Run(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	for _, b := range benchmarks() {
		if b.name == name {
			e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, nil))}
			return b.run(ctx, e, args)
		}
	}
	Usage(stderr)
	if name == "" {
		return fmt.Errorf("%w: bench: no benchmark named", ErrUsage)
	}
	return fmt.Errorf("%w: bench: unknown benchmark %q (want one of %s)", ErrUsage, name, strings.Join(Names(), ", "))
}

// env is what a benchmark may touch of the outside world.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

// common are the flags every benchmark takes.
type common struct {
	url     string
	quick   bool
	profile string
	// meshAccount gives the embedded server hbmesh server's mesh account,
	// whose clients see their DISCONNECT advisories.
	meshAccount bool
	help        io.Writer // where -h prints the flags: stdout, as for every command
}

func newFlags(e *env, name string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet("hbmesh bench "+name, flag.ContinueOnError)
	// A bad flag is one line (parse's error), as for every other command;
	// only -h lists the flags.
	fs.SetOutput(io.Discard)
	c := &common{help: e.stdout}
	fs.StringVar(&c.url, "s", "", "NATS server URL; empty starts an embedded server on a random loopback port")
	fs.BoolVar(&c.quick, "quick", false, "small and short run for CI; overrides the size flags")
	fs.StringVar(&c.profile, "cpuprofile", "", "write a CPU profile of this process (server, publisher and consumers alike) to `file`")
	return fs, c
}

func (c *common) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(c.help, "usage: %s [flags]\n", fs.Name())
		fs.SetOutput(c.help)
		fs.PrintDefaults()
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %s: %w (%s -h lists the flags)", ErrUsage, strings.TrimPrefix(fs.Name(), "hbmesh bench "), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", ErrUsage, strings.TrimPrefix(fs.Name(), "hbmesh bench "), fs.Arg(0))
	}
	return nil
}

// server returns the URL to use, starting an embedded server unless one
// was given. stop shuts down what was started.
// When -cpuprofile was given, profiling runs from here until stop.
func (c *common) server() (url string, stop func(), err error) {
	stopProfile := func() {}
	if c.profile != "" {
		f, err := os.Create(c.profile)
		if err != nil {
			return "", nil, fmt.Errorf("bench: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("bench: cpu profile: %w", err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	if c.url != "" {
		return c.url, stopProfile, nil
	}
	url, stopServer, err := startServer(c.meshAccount)
	if err != nil {
		stopProfile()
		return "", nil, err
	}
	return url, func() { stopServer(); stopProfile() }, nil
}

func startServer(meshAccount bool) (string, func(), error) {
	cfg := embedded.DefaultConfig()
	cfg.Port = embedded.RandomPort
	if meshAccount {
		cfg.MeshAccount = embedded.DefaultMeshAccount
	}
	cfg.Options = func(o *server.Options) {
		// The ingest bench parks whole batches in the server's outbound
		// buffer of a paused consumer; the default 64MB is enough for the
		// defaults but not for larger -m.
		o.MaxPending = 1 << 30
		o.WriteDeadline = 30 * time.Second
		o.MaxPayload = 1 << 20
	}
	s, err := embedded.New(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("bench: embedded server: %w", err)
	}
	if err := s.Start(); err != nil {
		return "", nil, fmt.Errorf("bench: embedded server: %w", err)
	}
	return s.ClientURL(), s.Shutdown, nil
}

func connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(0)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s to %s: %w", name, url, err)
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

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitFor polls cond every millisecond until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: timed out after %v waiting for %s", timeout, what)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
