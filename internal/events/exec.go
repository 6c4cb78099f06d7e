package events

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Defaults of [ExecConfig].
const (
	DefaultExecTimeout       = 10 * time.Second
	DefaultExecMaxConcurrent = 4
	DefaultExecQueueSize     = 256
	// stderrTail is how much of a failed hook's stderr is logged.
	stderrTail = 1024
	// execWaitDelay bounds how long a hook's stdio may stay open after the
	// hook itself has exited or been killed (a stray grandchild).
	execWaitDelay = time.Second
)

// ExecConfig configures an [Exec] hook.
type ExecConfig struct {
	// Command is run as /bin/sh -c Command for each event. Required.
	Command string
	// States selects the events that run the hook by their new state.
	// Default: empty, meaning every event.
	States []monitor.State
	// MonitorID is passed as HBMESH_MONITOR and in the JSON on stdin.
	// Default "".
	MonitorID string
	// Timeout bounds one run of the hook. On expiry the hook's whole
	// process group is killed with SIGKILL and the run counts as failed.
	// Default 10s.
	Timeout time.Duration
	// MaxConcurrent bounds how many hooks run at once. Default 4.
	MaxConcurrent int
	// QueueSize bounds the events waiting for a free slot. Default 256.
	QueueSize int
	// Logger receives the hook's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultExecConfig returns an ExecConfig running command with every
// default filled in.
func DefaultExecConfig(command string) ExecConfig {
	return ExecConfig{
		Command:       command,
		Timeout:       DefaultExecTimeout,
		MaxConcurrent: DefaultExecMaxConcurrent,
		QueueSize:     DefaultExecQueueSize,
	}
}

func (c *ExecConfig) fillDefaults() {
	d := DefaultExecConfig("")
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = d.MaxConcurrent
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	c.Logger = discardIfNil(c.Logger)
}

// Validate reports the first bad field by name and value.
func (c *ExecConfig) Validate() error {
	const invalid cfgerr.Of = "exec hook"
	if c.MonitorID != "" {
		if err := wire.ValidateID(c.MonitorID); err != nil {
			return invalid.Wrap("MonitorID", nil, err)
		}
	}
	for _, s := range c.States {
		if s < monitor.StateAlive || s > monitor.StateLeft {
			return invalid.Field("States", s, "is not alive, suspect, dead or left")
		}
	}
	switch {
	case c.Command == "":
		return invalid.Field("Command", nil, "must not be empty")
	case c.Timeout < time.Millisecond:
		return invalid.Field("Timeout", c.Timeout, "must be at least 1ms")
	case c.MaxConcurrent < 1 || c.MaxConcurrent > 1024:
		return invalid.Field("MaxConcurrent", c.MaxConcurrent, "must be within [1, 1024]")
	case c.QueueSize < 1:
		return invalid.Field("QueueSize", c.QueueSize, "must be at least 1")
	}
	return nil
}

// Exec runs a shell command for each event: the --on-event hook. Create
// it with [NewExec].
//
// The hook runs as /bin/sh -c Command with the parent's environment plus:
//
//	HBMESH_EVENT    "conflict" if the event flags a conflict, else "restart"
//	                if it flags a restart, else the new state's name
//	HBMESH_STATE    the new state: alive, suspect, dead or left
//	HBMESH_PREV     the previous state ("" on first sighting)
//	HBMESH_REASON   why, e.g. timeout, goodbye, first_beat
//	HBMESH_PEER_ID, HBMESH_PEER_HOST, HBMESH_BOOT, HBMESH_SEQ (a NUL in the
//	                peer's host or boot becomes U+FFFD; see [Exec.Env])
//	HBMESH_RESTART  true or false
//	HBMESH_MONITOR  the monitor's id
//	HBMESH_TIME     when the monitor decided, RFC 3339 with nanoseconds
//
// and the event as one JSON object (the format of monitor --json) on
// stdin. Its stdout is discarded. A non-zero exit, a timeout or a failure
// to start is logged with the tail of its stderr and counted as failed.
// Hooks are not retried.
type Exec struct {
	cfg    ExecConfig
	states [8]bool // indexed by monitor.State; all false means every state
	q      chan monitor.Event
	st     counters
	drop   dropLog
	runs   atomic.Bool
}

// NewExec checks cfg and returns the hook. Zero fields of cfg take their
// defaults. It does no I/O.
func NewExec(cfg ExecConfig) (*Exec, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Exec{
		cfg:  cfg,
		q:    make(chan monitor.Event, cfg.QueueSize),
		drop: dropLog{log: cfg.Logger, sink: "exec"},
	}
	for _, s := range cfg.States {
		e.states[s] = true
	}
	return e, nil
}

// Handle queues ev for the hook if its state passes the filter. It never
// blocks; see the package doc.
func (e *Exec) Handle(ev monitor.Event) {
	if len(e.cfg.States) > 0 && (int(ev.State) >= len(e.states) || !e.states[ev.State]) {
		return
	}
	enqueue(e.q, ev, &e.st, &e.drop)
}

// Stats returns the hook's counters.
func (e *Exec) Stats() Stats { return e.st.snapshot() }

// Run runs hooks for queued events, at most MaxConcurrent at a time,
// until ctx is done. Hooks already running then finish (each within its
// Timeout); events still queued are counted as dropped. Run returns nil
// once every hook has exited. Run may be called once; a second call
// returns [ErrRunTwice].
func (e *Exec) Run(ctx context.Context) error {
	if !e.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	var wg sync.WaitGroup
	for range e.cfg.MaxConcurrent {
		wg.Go(func() {
			for {
				// Prefer shutdown over starting another hook.
				if ctx.Err() != nil {
					return
				}
				select {
				case ev := <-e.q:
					e.run(&ev)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	for {
		select {
		case <-e.q:
			e.st.dropped.Add(1)
			e.drop.drop("shutdown")
		default:
			return nil
		}
	}
}

// eventName is HBMESH_EVENT.
func eventName(ev *monitor.Event) string {
	switch {
	case ev.Conflict:
		return "conflict"
	case ev.Restart:
		return "restart"
	}
	return ev.State.String()
}

// Env returns the HBMESH_* variables the hook gets for ev, as NAME=value.
// The host and boot are the peer's own UTF-8 and may hold a NUL, which no
// environment can (os/exec refuses to start the hook): it becomes U+FFFD
// there, and stdin has the value as it came.
func (e *Exec) Env(ev *monitor.Event) []string {
	return []string{
		"HBMESH_EVENT=" + eventName(ev),
		"HBMESH_PEER_ID=" + ev.ID,
		"HBMESH_PEER_HOST=" + envValue(ev.Host),
		"HBMESH_STATE=" + ev.State.String(),
		"HBMESH_PREV=" + ev.Prev.String(),
		"HBMESH_REASON=" + string(ev.Reason),
		"HBMESH_BOOT=" + envValue(ev.Boot),
		"HBMESH_SEQ=" + strconv.FormatUint(ev.Seq, 10),
		"HBMESH_RESTART=" + strconv.FormatBool(ev.Restart),
		"HBMESH_MONITOR=" + e.cfg.MonitorID,
		"HBMESH_TIME=" + ev.Time.UTC().Format(time.RFC3339Nano),
	}
}

// envValue is s with every NUL replaced by U+FFFD.
func envValue(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// run runs the hook once. It deliberately ignores Run's context: a hook
// that has started is allowed to finish within its Timeout.
func (e *Exec) run(ev *monitor.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", e.cfg.Command)
	cmd.Env = append(os.Environ(), e.Env(ev)...)
	cmd.Stdin = bytes.NewReader(ev.AppendJSON(nil, e.cfg.MonitorID))
	var stderr tailBuffer
	cmd.Stderr = &stderr
	// Its own process group, so a timeout kills whatever the shell started
	// too, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay
	start := time.Now()
	err := cmd.Run()
	if err == nil {
		e.st.sent.Add(1)
		return
	}
	e.st.failed.Add(1)
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", e.cfg.Timeout, err)
	}
	e.cfg.Logger.Warn("event hook failed", "peer", ev.ID, "state", ev.State.String(),
		"took", time.Since(start), "err", err, "stderr", stderr.String())
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > stderrTail {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-stderrTail:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}
