package events

import (
	"bytes"
	"cmp"
	"context"
	"errors"
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
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.MaxConcurrent = cmp.Or(c.MaxConcurrent, d.MaxConcurrent)
	c.QueueSize = cmp.Or(c.QueueSize, d.QueueSize)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
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
//	                peer's host or boot becomes U+FFFD; see [HookEnv])
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
	// A hook that has started finishes (run ignores ctx).
	work(ctx, e.q, e.cfg.MaxConcurrent, e.run)
	dropQueued(e.q, func(*monitor.Event) uint64 { return 1 }, &e.st, &e.drop)
	return nil
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

// HookEnv returns the HBMESH_* variables a hook gets for ev, reported by
// monitorID, as NAME=value. The host and boot are the peer's own UTF-8
// and may hold a NUL, which no environment can (os/exec refuses to start
// the hook): it becomes U+FFFD there, and stdin has the value as it came.
func HookEnv(ev *monitor.Event, monitorID string) []string {
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
		"HBMESH_MONITOR=" + monitorID,
		"HBMESH_TIME=" + ev.Time.UTC().Format(time.RFC3339Nano),
	}
}

// envValue is s with every NUL replaced by U+FFFD.
func envValue(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// run runs the hook once. It deliberately ignores Run's context: a hook
// that has started is allowed to finish within its Timeout.
func (e *Exec) run(ev *monitor.Event) {
	h := Hook{Command: e.cfg.Command, Timeout: e.cfg.Timeout}
	start := time.Now()
	stderr, err := h.Run(context.Background(), ev, e.cfg.MonitorID, nil)
	if err == nil {
		e.st.sent.Add(1)
		return
	}
	e.st.failed.Add(1)
	e.cfg.Logger.Warn("event hook failed", "peer", ev.ID, "state", ev.State.String(),
		"took", time.Since(start), "err", err, "stderr", stderr)
}

// Hook is one way of running a hook command: /bin/sh -c Command, with
// the variables of [HookEnv] added to the process's environment and the
// event as one JSON object (the format of monitor --json) on stdin; its
// stdout is discarded. [Exec] queues events for it; a caller that must
// know the outcome (hbmesh notify, which acknowledges an event only once
// its hook succeeded) calls Run itself.
type Hook struct {
	// Command is the shell command. Required.
	Command string
	// Timeout bounds one run: on expiry the hook's whole process group is
	// killed with SIGKILL and Run returns an error. Required.
	Timeout time.Duration
	// DieWithCaller kills the hook's whole process group as soon as the
	// calling process dies, even by SIGKILL, and once the hook's shell
	// exits: nothing the hook started outlives the run. A caller whose
	// work is handed to another process when it dies (a notify worker's
	// unacknowledged event) needs it, so a hook cannot finish its work
	// after the work was given to someone else.
	DieWithCaller bool
}

// errHookTimeout is the cause of a hook's context when its Timeout
// expires.
var errHookTimeout = errors.New("hook timed out")

// Run runs the hook for ev, reported by monitorID, with extraEnv
// (NAME=value) added after the HBMESH_* variables, and waits for it. When
// ctx is done first, the hook's process group is killed as on a timeout.
// It returns nil when the hook exited 0; otherwise an error (a non-zero
// exit, a timeout, ctx's cause, a failure to start) and the tail of the
// hook's stderr.
func (h *Hook) Run(ctx context.Context, ev *monitor.Event, monitorID string, extraEnv []string) (stderr string, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, h.Timeout, errHookTimeout)
	defer cancel()
	script := h.Command
	var lifeline *os.File // the write end, held until the shell exits
	var watched *os.File  // the read end, the hook's fd 3
	if h.DieWithCaller {
		// The hook's shell first starts a watcher in its process group
		// that blocks reading fd 3, the read end of a pipe whose only
		// write end this process holds (close-on-exec, so no hook
		// inherits it). When this process dies, or closes the write end
		// once the shell has exited, the read returns and the watcher
		// kills the group: the shell and everything it started. (Linux's
		// PR_SET_PDEATHSIG would reach the shell alone.)
		if watched, lifeline, err = os.Pipe(); err != nil {
			return "", fmt.Errorf("hook lifeline: %w", err)
		}
		defer lifeline.Close()
		script = "(read _ <&3; kill -KILL 0) </dev/null >/dev/null 2>&1 &\nexec 3<&-\n" + h.Command
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Env = append(append(os.Environ(), HookEnv(ev, monitorID)...), extraEnv...)
	cmd.Stdin = bytes.NewReader(ev.AppendJSON(nil, monitorID))
	if watched != nil {
		cmd.ExtraFiles = []*os.File{watched}
	}
	var tail tailBuffer
	cmd.Stderr = &tail
	// Its own process group, so a timeout kills whatever the shell started
	// too, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay
	err = cmd.Start()
	if watched != nil {
		watched.Close() // the hook has its copy
	}
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); cause == errHookTimeout {
			err = fmt.Errorf("timed out after %s: %w", h.Timeout, err)
		} else {
			err = fmt.Errorf("stopped (%w): %w", cause, err)
		}
	}
	return tail.String(), err
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
