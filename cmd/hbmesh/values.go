package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nkeys"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/redact"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// The flag types kong does not know, and the checks it does not make.
// Numbers and durations take optional min and max tags (`min:"100ms"
// max:"1h"`); an int flag tagged `auto:""` also takes 0, meaning "let the
// library choose". The named types ("type" tag) check what wire checks:
// id, prefix, labels, httpaddr, states.

// badValueError is a value that does not parse. Its message names the
// value; an environment variable's error (see envResolver) quotes the
// value already and prints only why.
type badValueError struct {
	value string
	why   string
}

func (e *badValueError) Error() string { return fmt.Sprintf("invalid value %q: %s", e.value, e.why) }

// mappers are the kong options that register every type below.
func mappers() []kong.Option {
	return []kong.Option{
		kong.TypeMapper(reflect.TypeFor[time.Duration](), numberMapper(time.ParseDuration, "not a duration (want e.g. 500ms, 2s, 1m)")),
		kong.TypeMapper(reflect.TypeFor[int](), numberMapper(strconv.Atoi, "not an integer")),
		kong.TypeMapper(reflect.TypeFor[float64](), numberMapper(parseFloat, "not a number")),
		kong.NamedMapper("id", stringMapper(wire.ValidateID)),
		kong.NamedMapper("prefix", stringMapper(wire.ValidatePrefix)),
		kong.NamedMapper("labels", labelsMapper(wire.ValidateLabels)),
		kong.NamedMapper("alertlabels", labelsMapper(events.ValidateAlertLabels)),
		kong.NamedMapper("httpaddr", kong.MapperFunc(decodeHTTPAddr)),
		kong.NamedMapper("states", kong.MapperFunc(decodeStates)),
	}
}

// popString pops the value token as a string.
func popString(ctx *kong.DecodeContext) (string, error) {
	var s string
	err := ctx.Scan.PopValueInto("a", &s) // "expected a value but got ..."
	return s, err
}

// inRange checks x against the value's min and max tags.
func inRange[T int | float64 | time.Duration](ctx *kong.DecodeContext, x T, parse func(string) (T, error)) error {
	bound := func(key string) (T, bool) {
		s := ctx.Value.Tag.Get(key)
		if s == "" {
			return 0, false
		}
		b, err := parse(s)
		if err != nil {
			panic(fmt.Sprintf("flag --%s: bad %s tag %q", ctx.Value.Name, key, s))
		}
		return b, true
	}
	lo, hasLo := bound("min")
	hi, hasHi := bound("max")
	switch {
	case hasHi && (x < lo || x > hi):
		return fmt.Errorf("%v is outside [%v, %v]", x, lo, hi)
	case hasLo && x < lo:
		return fmt.Errorf("%v is below the minimum %v", x, lo)
	}
	return nil
}

// numberMapper decodes a number with parse, refusing what it cannot parse
// with why, and checks it against the min, max and auto tags.
func numberMapper[T int | float64 | time.Duration](parse func(string) (T, error), why string) kong.MapperFunc {
	return func(ctx *kong.DecodeContext, target reflect.Value) error {
		s, err := popString(ctx)
		if err != nil {
			return err
		}
		x, err := parse(s)
		if err != nil {
			return &badValueError{s, why}
		}
		auto := ctx.Value.Tag.Has("auto")
		if !auto || x != 0 {
			if err := inRange(ctx, x, parse); err != nil {
				if auto {
					return fmt.Errorf("%w, or 0 for the automatic size", err)
				}
				return err
			}
		}
		target.Set(reflect.ValueOf(x).Convert(target.Type()))
		return nil
	}
}

// parseFloat is strconv.ParseFloat without NaN.
func parseFloat(s string) (float64, error) {
	x, err := strconv.ParseFloat(s, 64)
	if err == nil && math.IsNaN(x) {
		err = errors.New("NaN")
	}
	return x, err
}

// stringMapper is a string checked by valid, whose errors name the value.
func stringMapper(valid func(string) error) kong.Mapper {
	return kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
		s, err := popString(ctx)
		if err != nil {
			return err
		}
		if err := valid(s); err != nil {
			return err
		}
		target.SetString(s)
		return nil
	})
}

// labelsMapper adds one key=value label to a map[string]string per flag
// (--label, --alert-label); from an environment variable (envResolver
// passes a list) every item of the comma-separated list. valid checks the
// whole map after each label.
func labelsMapper(valid func(map[string]string) error) kong.MapperFunc {
	return func(ctx *kong.DecodeContext, target reflect.Value) error {
		tok := ctx.Scan.Pop()
		var items []string
		switch v := tok.Value.(type) {
		case string:
			items = []string{v}
		case []string:
			items = v
		default:
			return fmt.Errorf("want key=value, got %v", v)
		}
		if target.IsNil() {
			target.Set(reflect.MakeMap(target.Type()))
		}
		m := target.Interface().(map[string]string)
		for _, item := range items {
			k, val, ok := strings.Cut(item, "=")
			if !ok || k == "" {
				return &badValueError{item, "want key=value"}
			}
			if _, dup := m[k]; dup {
				return fmt.Errorf("label %q given twice", k)
			}
			m[k] = val
			if err := valid(m); err != nil {
				delete(m, k)
				return err
			}
		}
		return nil
	}
}

// defaultHTTPHost is what --http binds when given only a port: the
// dashboard and API are read-only but reveal the fleet, so exposing them
// must be asked for by naming a host such as 0.0.0.0.
const defaultHTTPHost = "127.0.0.1"

// decodeHTTPAddr takes a listen address: HOST:PORT, :PORT or PORT, the last
// two meaning defaultHTTPHost.
func decodeHTTPAddr(ctx *kong.DecodeContext, target reflect.Value) error {
	s, err := popString(ctx)
	if err != nil {
		return err
	}
	addr := s
	if _, err := strconv.Atoi(s); err == nil {
		addr = ":" + s
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &badValueError{s, "want HOST:PORT, e.g. 127.0.0.1:8080"}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number in [0, 65535]", port)
	}
	if host == "" {
		host = defaultHTTPHost
	}
	target.SetString(net.JoinHostPort(host, port))
	return nil
}

// decodeStates takes a comma-separated list of monitor states into a
// []monitor.State, each once.
func decodeStates(ctx *kong.DecodeContext, target reflect.Value) error {
	s, err := popString(ctx)
	if err != nil {
		return err
	}
	l := target.Interface().([]monitor.State)
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		st, err := monitor.ParseState(p)
		if err != nil || st == monitor.StateUnknown {
			return fmt.Errorf("unknown state %q (want alive, suspect, dead or left)", p)
		}
		if !slices.Contains(l, st) {
			l = append(l, st)
		}
	}
	target.Set(reflect.ValueOf(l))
	return nil
}

// usageError is a bad command line found after parsing (a combination of
// flags, a file that is not there): run prints it as one line and exits 2,
// as it does a configuration error (see isUsage).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// isUsage reports whether err is a usage error: a usageError, or a
// configuration error (cfgerr) from a package that checked the config
// the flags built.
func isUsage(err error) bool {
	_, ok := errors.AsType[*usageError](err)
	return ok || errors.Is(err, cfgerr.ErrInvalid)
}

// checkFile makes sure the file path, named by flag, can be opened for
// reading, so a wrong path is a usage error (exit 2) before anything
// connects rather than a runtime failure after.
func checkFile(flag, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return pathUsage(flag, path, err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.IsDir() {
		return usagef("%s %s: is a directory, want a file", flag, quotePath(path))
	}
	return nil
}

// checkDir makes sure the directory path, named by flag, exists.
func checkDir(flag, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return pathUsage(flag, path, err)
	}
	if !st.IsDir() {
		return usagef("%s %s: not a directory", flag, quotePath(path))
	}
	return nil
}

// pathUsage is the usage error for a path that cannot be used: the flag,
// the path, and the reason without the *fs.PathError's repetition of both.
func pathUsage(flag, path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return usagef("%s %s: %v", flag, quotePath(path), err)
}

// quotePath quotes a path for a message, unless it is no path but key
// material given where a path belongs (NATS_CREDS set to a creds file's
// contents, --nkey to a seed): that is never printed.
func quotePath(path string) string {
	if looksSecret(path) {
		return "(not shown: it holds key material, not a file path)"
	}
	return strconv.Quote(path)
}

// looksSecret reports whether s looks like credentials rather than a path:
// several lines, a creds or PEM block, a data: URL, or an nkey seed.
func looksSecret(s string) bool {
	if strings.ContainsAny(s, "\n\r") || strings.Contains(s, "-----") || strings.HasPrefix(s, "data:") {
		return true
	}
	_, err := nkeys.FromSeed([]byte(strings.TrimSpace(s)))
	return err == nil
}

// quoteURL quotes a URL for a message, as quotePath does a path: its
// credentials redacted (redact.URL, the rule for every URL hbmesh shows).
func quoteURL(s string) string { return strconv.Quote(redact.URL(s)) }

// redactURLs is redact.URL for each URL of a comma-separated list.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redact.URL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// redactIn replaces, in msg, each URL of list that carries credentials
// with its redact.URL form.
func redactIn(msg, list string) string {
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); strings.Contains(p, "@") {
			msg = strings.ReplaceAll(msg, p, redact.URL(p))
		}
	}
	return msg
}
