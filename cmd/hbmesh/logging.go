package main

import (
	"context"
	"io"
	"log/slog"
)

// logFlags are the logging flags every subcommand shares. Logs always go
// to stderr, so stdout stays clean for events and answers. A command
// chooses its default level with a set tag (`set:"loglevel=warn"`).
type logFlags struct {
	Format string `name:"log-format" enum:"text,json" default:"text" placeholder:"text|json" env:"HBMESH_LOG_FORMAT" help:"log format on stderr"`
	Level  string `name:"log-level" enum:"debug,info,warn,error" default:"${loglevel}" placeholder:"debug|info|warn|error" env:"HBMESH_LOG_LEVEL" help:"minimum log level"`
}

// logger builds the slog logger the flags describe, writing to w.
func (l *logFlags) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(l.Level)) // the flag only admits valid names
	opts := &slog.HandlerOptions{Level: lvl}
	if l.Format == "json" {
		opts.ReplaceAttr = durationString
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationString writes a duration as the text format does ("1s"), not
// as slog's JSON handler does (1000000000 nanoseconds), which a reader of
// the journal would have to count digits to read.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// quiet returns log, but passing only warnings and errors unless the
// flags asked for debug: for a chatty component, such as an embedded
// nats-server's startup banner, whose notices are not the command's news.
func (l *logFlags) quiet(log *slog.Logger) *slog.Logger {
	if l.Level == "debug" {
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
