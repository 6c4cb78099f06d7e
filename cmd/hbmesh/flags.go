package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// usageError is a bad command line: run prints it as one line and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
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
		return usagef("%s %q: is a directory, want a file", flag, path)
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
		return usagef("%s %q: not a directory", flag, path)
	}
	return nil
}

// pathUsage is the usage error for a path that cannot be used: the flag,
// the path, and the reason without the *fs.PathError's repetition of both.
func pathUsage(flag, path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return usagef("%s %q: %v", flag, path, err)
}

// errHelpShown means usage was printed on request: exit 0.
var errHelpShown = errors.New("help shown")

// flags wraps one subcommand's flag.FlagSet with what the standard library
// lacks: short aliases (-s for --server), environment-variable fallbacks,
// hidden flags, grouped help and positional arguments between flags. The
// standard library's own output is discarded; run prints every error.
type flags struct {
	fs       *flag.FlagSet
	cmd      string
	usage    string // e.g. "hbmesh probe ID [flags]"
	desc     string
	examples []string
	maxArgs  int // positional arguments accepted
	args     []string
	explicit map[string]bool // long names given on the command line

	order  []string          // long names, in registration order
	short  map[string]string // long name -> short alias
	alias  map[string]string // short alias -> long name
	env    map[string]string // long name -> environment variable
	hidden map[string]bool
	group  map[string]string // long name -> help section
	cur    string            // section new flags go into
}

func newFlags(cmd, usage, desc string, examples []string) *flags {
	fs := flag.NewFlagSet("hbmesh "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{
		fs: fs, cmd: cmd, usage: usage, desc: desc, examples: examples,
		short: map[string]string{}, alias: map[string]string{}, env: map[string]string{},
		hidden: map[string]bool{}, group: map[string]string{}, cur: "Flags",
	}
}

// section starts a new help section for the flags registered after it.
func (f *flags) section(name string) { f.cur = name }

// added records a flag just registered on fs under long (and short).
func (f *flags) added(long, short string) {
	f.order = append(f.order, long)
	f.group[long] = f.cur
	if short != "" {
		fl := f.fs.Lookup(long)
		f.fs.Var(fl.Value, short, fl.Usage)
		f.short[long], f.alias[short] = short, long
	}
}

func (f *flags) String(p *string, long, short, def, usage string) {
	f.fs.StringVar(p, long, def, usage)
	f.added(long, short)
}

func (f *flags) Bool(p *bool, long, short string, def bool, usage string) {
	f.fs.BoolVar(p, long, def, usage)
	f.added(long, short)
}

func (f *flags) Var(v flag.Value, long, short, usage string) {
	f.fs.Var(v, long, usage)
	f.added(long, short)
}

// Env makes the environment variable name the fallback of flag long: it
// applies when the flag is not given explicitly.
func (f *flags) Env(long, name string) { f.env[long] = name }

// Hide leaves flag long out of the help listing.
func (f *flags) Hide(long string) { f.hidden[long] = true }

// parse parses args, printing usage on -h/--help (errHelpShown), and then
// applies environment fallbacks. Positional arguments may appear between
// flags; at most maxArgs are accepted and end up in f.args.
func (f *flags) parse(e *env, args []string) error {
	for {
		err := f.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.printUsage(e.stdout)
			return errHelpShown
		}
		if err != nil {
			return &usageError{msg: f.dashes(err.Error())}
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(f.args) >= f.maxArgs {
			return usagef("unexpected argument %q", rest[0])
		}
		f.args = append(f.args, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) {
		name := fl.Name
		if long, ok := f.alias[name]; ok {
			name = long
		}
		set[name] = true
	})
	f.explicit = set
	for _, long := range slices.Sorted(maps.Keys(f.env)) {
		name := f.env[long]
		if set[long] || e.getenv == nil {
			continue
		}
		if v := e.getenv(name); v != "" {
			if err := f.fs.Set(long, v); err != nil {
				return usagef("invalid value %q for $%s (flag --%s): %v", v, name, long, err)
			}
		}
	}
	return nil
}

// flagNameInError finds the flag name in the flag package's messages:
// "flag provided but not defined: -x", "flag needs an argument: -x",
// "invalid value "v" for flag -x: ...", "invalid boolean value "v" for -x: ...".
var flagNameInError = regexp.MustCompile(`(not defined: |needs an argument: |for flag |for )-([^\s:=]+)`)

// dashes rewrites the single dash the flag package puts before a flag
// name to the two that help and every other message use (-s and other
// short aliases keep one).
func (f *flags) dashes(msg string) string {
	m := flagNameInError.FindStringSubmatchIndex(msg)
	if m == nil {
		return msg
	}
	name := msg[m[4]:m[5]]
	dash := "--"
	if _, short := f.alias[name]; short {
		dash = "-"
	}
	return msg[:m[4]-1] + dash + msg[m[4]:]
}

// isSet reports whether flag long was given on the command line (not by
// its environment variable).
func (f *flags) isSet(long string) bool { return f.explicit[long] }

func (f *flags) printUsage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s\n\n%s\n", f.usage, strings.TrimSpace(f.desc))
	var groups []string
	for _, long := range f.order {
		if g := f.group[long]; !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "\n%s:\n", g)
		for _, long := range f.order {
			if f.group[long] != g || f.hidden[long] {
				continue
			}
			fl := f.fs.Lookup(long)
			name, usage := flag.UnquoteUsage(fl)
			b.WriteString("  ")
			if s := f.short[long]; s != "" {
				fmt.Fprintf(&b, "-%s, ", s)
			}
			fmt.Fprintf(&b, "--%s", long)
			if name != "" {
				b.WriteString(" " + name)
			}
			b.WriteString("\n        " + strings.ReplaceAll(usage, "\n", "\n        "))
			var notes []string
			if d := fl.DefValue; d != "" && d != "false" && d != "0" && d != "[]" {
				notes = append(notes, fmt.Sprintf("default %s", d))
			}
			if ev := f.env[long]; ev != "" {
				notes = append(notes, "env $"+ev)
			}
			if len(notes) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
			}
			b.WriteString("\n")
		}
	}
	if len(f.examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, ex := range f.examples {
			b.WriteString("  " + ex + "\n")
		}
	}
	io.WriteString(w, b.String())
}

// durationFlag is a duration restricted to [min, max].
type durationFlag struct {
	d        *time.Duration
	min, max time.Duration
}

func (v durationFlag) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (want e.g. 500ms, 2s, 1m)")
	}
	if d < v.min || (v.max > 0 && d > v.max) {
		if v.max > 0 {
			return fmt.Errorf("%v is outside [%v, %v]", d, v.min, v.max)
		}
		return fmt.Errorf("%v is below the minimum %v", d, v.min)
	}
	*v.d = d
	return nil
}

// floatFlag is a float64 restricted to [min, max].
type floatFlag struct {
	f        *float64
	min, max float64
}

func (v floatFlag) String() string {
	if v.f == nil {
		return ""
	}
	return strconv.FormatFloat(*v.f, 'g', -1, 64)
}

func (v floatFlag) Set(s string) error {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) {
		return errors.New("not a number")
	}
	if x < v.min || x > v.max {
		return fmt.Errorf("%v is outside [%v, %v]", x, v.min, v.max)
	}
	*v.f = x
	return nil
}

// intFlag is an int restricted to [min, max].
type intFlag struct {
	i        *int
	min, max int
}

func (v intFlag) String() string {
	if v.i == nil {
		return ""
	}
	return strconv.Itoa(*v.i)
}

func (v intFlag) Set(s string) error {
	x, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not an integer")
	}
	if x < v.min || x > v.max {
		return fmt.Errorf("%d is outside [%d, %d]", x, v.min, v.max)
	}
	*v.i = x
	return nil
}

// autoIntFlag is an intFlag that also takes 0, meaning "let the library
// choose" (what the zero value of the config field means).
type autoIntFlag struct{ intFlag }

func (v autoIntFlag) Set(s string) error {
	if x, err := strconv.Atoi(s); err == nil && x == 0 {
		*v.i = 0
		return nil
	}
	if err := v.intFlag.Set(s); err != nil {
		return fmt.Errorf("%w, or 0 for the automatic size", err)
	}
	return nil
}

// enumFlag is a string restricted to a fixed set of choices.
type enumFlag struct {
	s       *string
	choices []string
}

func (v enumFlag) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v enumFlag) Set(s string) error {
	if !slices.Contains(v.choices, s) {
		return fmt.Errorf("want one of %s", strings.Join(v.choices, ", "))
	}
	*v.s = s
	return nil
}

// listFlag is a comma-separated list that may also be repeated.
type listFlag struct{ l *[]string }

func (v listFlag) String() string {
	if v.l == nil {
		return ""
	}
	return strings.Join(*v.l, ",")
}

func (v listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*v.l = append(*v.l, p)
		}
	}
	return nil
}

// labelsFlag collects repeated k=v labels.
type labelsFlag struct{ m map[string]string }

func (v labelsFlag) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(v.m)) {
		parts = append(parts, k+"="+v.m[k])
	}
	return strings.Join(parts, ",")
}

func (v labelsFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if _, dup := v.m[k]; dup {
		return fmt.Errorf("label %q given twice", k)
	}
	v.m[k] = val
	if err := wire.ValidateLabels(v.m); err != nil {
		delete(v.m, k)
		return err
	}
	return nil
}
