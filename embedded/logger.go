package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// slogBridge implements server.Logger on top of a *slog.Logger. It also
// remembers the first fatal message so Start can fail fast with the real
// cause (for example "address already in use") instead of a bare timeout.
type slogBridge struct {
	log *slog.Logger

	fatalOnce sync.Once
	fatal     chan struct{} // closed on the first Fatalf
	fatalMsg  string        // written once before fatal is closed
}

func newSlogBridge(l *slog.Logger) *slogBridge {
	return &slogBridge{log: l, fatal: make(chan struct{})}
}

func (b *slogBridge) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !b.log.Enabled(ctx, level) {
		return
	}
	b.log.Log(ctx, level, fmt.Sprintf(format, v...), "component", "nats-server")
}

func (b *slogBridge) Noticef(format string, v ...any) { b.logf(slog.LevelInfo, format, v) }
func (b *slogBridge) Warnf(format string, v ...any)   { b.logf(slog.LevelWarn, format, v) }
func (b *slogBridge) Errorf(format string, v ...any)  { b.logf(slog.LevelError, format, v) }
func (b *slogBridge) Debugf(format string, v ...any)  { b.logf(slog.LevelDebug, format, v) }
func (b *slogBridge) Tracef(format string, v ...any)  { b.logf(slog.LevelDebug, format, v) }

// Fatalf logs at Error and never exits the process: a library does not get
// to decide that. nats-server calls it for unrecoverable startup errors.
func (b *slogBridge) Fatalf(format string, v ...any) {
	b.logf(slog.LevelError, format, v)
	b.fatalOnce.Do(func() {
		b.fatalMsg = fmt.Sprintf(format, v...)
		close(b.fatal)
	})
}
