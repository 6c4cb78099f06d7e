package main

import (
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
