package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/pause"
	"github.com/hbmesh/hbmesh/internal/syncio"
)

// nodeRun is what one process cost over the measuring window.
type nodeRun struct {
	Name         string  `json:"name"`
	Command      string  `json:"command"`
	RSSBytes     uint64  `json:"rss_bytes"`
	RSSAnonBytes uint64  `json:"rss_anon_bytes"`
	RSSFileBytes uint64  `json:"rss_file_bytes"`
	Threads      int     `json:"threads"`
	CPUNs        int64   `json:"cpu_ns"`
	CPUUsPerSec  float64 `json:"cpu_us_per_sec"`
	Beats        int     `json:"beats,omitempty"`
	CPUUsPerBeat float64 `json:"cpu_us_per_beat,omitempty"`
	BeatBytes    int     `json:"beat_bytes,omitempty"`
}

type nodeResult struct {
	Bench      string    `json:"bench"`
	Method     string    `json:"method"`
	IntervalMS int64     `json:"interval_ms"`
	MeasureS   float64   `json:"measure_s"`
	Beat       string    `json:"beat"`
	Runs       []nodeRun `json:"runs"`
	Machine    string    `json:"machine"`
	CPUs       int       `json:"gomaxprocs"`
	GoVersion  string    `json:"go_version"`
}

// NodeOptions are the options of the node benchmark.
type NodeOptions struct {
	Common
	// Interval is the node's beat interval. Default 1s.
	Interval time.Duration
	// Measure is the measuring window, after a warm-up of 5 intervals.
	// Default 1m.
	Measure time.Duration
	// Exe is the hbmesh executable run as the node and, unless NoIdle,
	// as the idle baseline. Default: this executable.
	Exe string
	// Hello, when set, is a Go hello world run as a baseline
	// (bench/cmd/gohello).
	Hello string
	// Bare, when set, is a bare nats.go client run as a baseline
	// (bench/cmd/barenode).
	Bare string
	// NoIdle leaves out the idle baseline, for an Exe without
	// `bench _idle`.
	NoIdle bool
}

// IdleCommand is the hidden `hbmesh bench` subcommand the node benchmark
// runs Exe as for its idle baseline: the binary's package initialisation
// and Go runtime, doing nothing, until killed.
const IdleCommand = "_idle"

// run measures what `hbmesh node` costs its host: RSS while idle between
// beats, and CPU per beat, read from /proc for a real node process
// beating to a real server. Baselines run in the same window: the same
// executable doing nothing, and, when given, a Go hello world and a bare
// nats.go client that publishes the node's beat bytes on the same
// interval.
func (o NodeOptions) run(ctx context.Context, e *env) error {
	c := &o.Common
	interval, measure, exe, hello, bare := &o.Interval, &o.Measure, &o.Exe, &o.Hello, &o.Bare
	if *interval == 0 {
		*interval = time.Second
	}
	if *measure == 0 {
		*measure = time.Minute
	}
	if c.Quick {
		*interval, *measure = 200*time.Millisecond, 2*time.Second
	}
	switch {
	case *interval < 100*time.Millisecond:
		return invalid.Field("--interval", *interval, "is below 100ms")
	case *measure < 0:
		return invalid.Field("--measure", *measure, "must not be negative")
	}
	if _, err := os.Stat("/proc/self/task"); err != nil {
		return fmt.Errorf("bench: node: needs Linux /proc: %w", err)
	}
	if *exe == "" {
		p, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: node: find own executable: %w", err)
		}
		*exe = p
	}
	// The children's stderr and this function's progress share e.stderr.
	e = &env{stdout: e.stdout, stderr: &syncio.Writer{W: e.stderr}, log: e.log}
	url, stop, err := c.server()
	if err != nil {
		return err
	}
	defer stop()
	nc, err := connect(url, "bench-node-listener")
	if err != nil {
		return err
	}
	defer nc.Close()

	const id = "web-1"
	beats := &beatCounter{}
	sub, err := nc.Subscribe("hb.*", beats.add)
	if err != nil {
		return fmt.Errorf("bench: node: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("bench: node: %w", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var procs []*benchProc
	defer func() {
		cancel()
		for _, p := range procs {
			p.wait()
		}
	}()
	start := func(name string, exe string, args ...string) (*benchProc, error) {
		p, err := startBenchProc(cctx, e, name, exe, args...)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}

	node, err := start("hbmesh node", *exe, "node", "-s", url, "--id", id, "--label", "role=web", "--label", "zone=eu-1",
		"--interval", interval.String(), "--log-level", "warn")
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 10*time.Second, "the node's first beat", func() bool { return beats.count("hb."+id) > 0 }); err != nil {
		return err
	}
	beat := beats.last("hb." + id)
	if !o.NoIdle {
		if _, err := start("hbmesh idle", *exe, "bench", IdleCommand); err != nil {
			return err
		}
	}
	if *hello != "" {
		if _, err := start("go hello", *hello); err != nil {
			return err
		}
	}
	const bareID = "bare-1"
	if *bare != "" {
		if _, err := start("nats.go bare", *bare, "-s", url, "-subject", "hb."+bareID, "-interval", interval.String(), "-payload", string(beat)); err != nil {
			return err
		}
	}

	// Warm up: connections made, first GC cycles and the scavenger past.
	if err := pause.For(ctx, 5**interval); err != nil {
		return err
	}
	cpu0 := make([]int64, len(procs))
	for i, p := range procs {
		if cpu0[i], err = procCPU(p.pid()); err != nil {
			return fmt.Errorf("bench: node: %s: %w", p.name, err)
		}
	}
	n0, b0 := beats.count("hb."+id), beats.count("hb."+bareID)
	t0 := time.Now()
	fmt.Fprintf(e.stderr, "node: measuring %d processes for %v\n", len(procs), *measure)
	if err := pause.For(ctx, *measure); err != nil {
		return err
	}
	// Idle: half an interval after a beat, the furthest from either one.
	last := beats.count("hb." + id)
	if err := waitFor(ctx, 2**interval, "the next beat", func() bool { return beats.count("hb."+id) > last }); err != nil {
		return err
	}
	if err := pause.For(ctx, *interval/2); err != nil {
		return err
	}
	wall := time.Since(t0)
	beat = beats.last("hb." + id) // the window's last: its seq has the digits of a minute's beating
	res := nodeResult{Bench: "node", IntervalMS: interval.Milliseconds(), MeasureS: round3(wall.Seconds()),
		Beat: string(beat), CPUs: gomaxprocs(), GoVersion: runtimeVersion(), Machine: machine(),
		Method: "real processes, one server; CPU = sum of /proc/<pid>/task/*/schedstat run time over the window; " +
			"RSS = VmRSS, RssAnon, RssFile of /proc/<pid>/status at the window's end, half an interval after a beat"}
	for i, p := range procs {
		r := nodeRun{Name: p.name, Command: p.command()}
		cpu, err := procCPU(p.pid())
		if err != nil {
			return fmt.Errorf("bench: node: %s: %w", p.name, err)
		}
		r.CPUNs = cpu - cpu0[i]
		r.CPUUsPerSec = round3(float64(r.CPUNs) / 1e3 / wall.Seconds())
		if err := procStatus(p.pid(), &r); err != nil {
			return fmt.Errorf("bench: node: %s: %w", p.name, err)
		}
		switch p.name {
		case "hbmesh node":
			r.Beats, r.BeatBytes = beats.count("hb."+id)-n0, len(beat)
		case "nats.go bare":
			r.Beats, r.BeatBytes = beats.count("hb."+bareID)-b0, len(beats.last("hb."+bareID))
		}
		if r.Beats > 0 {
			r.CPUUsPerBeat = round3(float64(r.CPUNs) / 1e3 / float64(r.Beats))
		}
		res.Runs = append(res.Runs, r)
		fmt.Fprintf(e.stderr, "node: %-13s rss %5.1f MiB (anon %4.1f, file %4.1f), %6.1f µs CPU/s, %3d beats, %6.1f µs/beat\n",
			r.Name, mib(r.RSSBytes), mib(r.RSSAnonBytes), mib(r.RSSFileBytes), r.CPUUsPerSec, r.Beats, r.CPUUsPerBeat)
	}
	if node.exited() {
		return fmt.Errorf("bench: node: the node exited during the run")
	}
	return e.emit(res)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// beatCounter counts and keeps the last payload per subject.
type beatCounter struct {
	mu    sync.Mutex
	n     map[string]int
	lastB map[string][]byte
}

func (b *beatCounter) add(m *nats.Msg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == nil {
		b.n, b.lastB = map[string]int{}, map[string][]byte{}
	}
	b.n[m.Subject]++
	b.lastB[m.Subject] = m.Data
}

func (b *beatCounter) count(subject string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[subject]
}

func (b *beatCounter) last(subject string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastB[subject]
}

// benchProc is a measured child process.
type benchProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startBenchProc(ctx context.Context, e *env, name, exe string, args ...string) (*benchProc, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	// The developer's NATS settings must not reach the processes measured.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "HBMESH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: node: start %s: %w", name, err)
	}
	p := &benchProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *benchProc) pid() int { return p.cmd.Process.Pid }

func (p *benchProc) command() string {
	args := append([]string{filepath.Base(p.cmd.Path)}, p.cmd.Args[1:]...)
	for i, a := range args {
		if len(a) > 40 {
			args[i] = a[:37] + "..."
		}
	}
	return strings.Join(args, " ")
}

func (p *benchProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process, killed by its context, to be reaped.
func (p *benchProc) wait() { <-p.done }

// procCPU sums the run time of every thread of pid, in nanoseconds, from
// /proc/<pid>/task/*/schedstat (whose first field is nanoseconds on CPU):
// /proc/<pid>/stat counts in 10ms ticks, too coarse for a beat.
func procCPU(pid int) (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has just exited
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		sum += ns
	}
	return sum, nil
}

// procStatus reads the memory and thread figures of /proc/<pid>/status.
func procStatus(pid int, r *nodeRun) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			r.RSSBytes = v << 10
		case "RssAnon":
			r.RSSAnonBytes = v << 10
		case "RssFile":
			r.RSSFileBytes = v << 10
		case "Threads":
			r.Threads = int(v)
		}
	}
	return sc.Err()
}

// machine names the CPU, core count and kernel, for the figures' record.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d CPUs%s, %s/%s", cpu, runtime.NumCPU(), kernel, runtime.GOOS, runtime.GOARCH)
}
