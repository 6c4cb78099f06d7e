package main

import (
	"context"
	"io"
	"log/slog"
)

// logFlags are the logging flags every subcommand shares. Logs always go
// to stderr, so stdout stays clean for events and answers.
type logFlags struct {
	format string
	level  string
}

// register adds the logging flags; a command may preset level (e.g. warn
// for one-shot client commands) before calling it.
func (l *logFlags) register(f *flags) {
	l.format = "text"
	if l.level == "" {
		l.level = "info"
	}
	f.section("Logging flags")
	f.Var(enumFlag{&l.format, []string{"text", "json"}}, "log-format", "", "log format on stderr: `text|json`")
	f.Var(enumFlag{&l.level, []string{"debug", "info", "warn", "error"}}, "log-level", "", "minimum log level: `debug|info|warn|error`")
	f.section("Flags")
}

// logger builds the slog logger the flags describe, writing to w.
func (l *logFlags) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(l.level)) // the flag only admits valid names
	opts := &slog.HandlerOptions{Level: lvl}
	if l.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// quiet returns log, but passing only warnings and errors unless the
// flags asked for debug: for a chatty component, such as an embedded
// nats-server's startup banner, whose notices are not the command's news.
func (l *logFlags) quiet(log *slog.Logger) *slog.Logger {
	if l.level == "debug" {
		return log
	}
	return slog.New(levelFloor{log.Handler(), slog.LevelWarn})
}

// levelFloor is a handler that drops records below floor.
type levelFloor struct {
	slog.Handler
	floor slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.floor && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(attrs), h.floor}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.floor}
}
