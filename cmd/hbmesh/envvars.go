package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// Environment variables. A flag declares its variable with kong's env tag
// (`env:"HBMESH_ID"`); a flag given on the command line beats its
// variable, which beats a --context (see natsctx.go), which beats the
// default. kong itself would read variables with os.LookupEnv; takeEnvs
// moves them to envResolver, which reads them through env.getenv, so that
// tests running hbmesh in-process choose its environment.

// takeEnvs leaves each flag's variables on the flag (for help, completion
// and the man page) and takes them off its value, where kong would look
// them up itself.
func takeEnvs(n *kong.Node) {
	for _, f := range n.Flags {
		f.Value.Tag.Envs = nil
	}
	for _, child := range n.Children {
		takeEnvs(child)
	}
}

// envResolver gives a flag that is not on the command line the value of
// its environment variable; an empty variable counts as unset. A value
// that does not parse is an *envError naming the variable.
type envResolver struct{ e *env }

func (r envResolver) Validate(*kong.Application) error { return nil }

func (r envResolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	for _, name := range flag.Envs {
		s := r.e.getenv(name)
		if s == "" {
			continue
		}
		var v any = s
		if flag.Value.IsMap() {
			// --label k=v --label k2=v2 is HBMESH_LABELS=k=v,k2=v2.
			v = strings.Split(s, ",")
		}
		if err := tryDecode(flag, v); err != nil {
			return nil, &envError{name: name, value: s, secret: flag.Tag.Has("secret"), err: err}
		}
		r.e.from[flag.Name] = "$" + name
		return v, nil
	}
	return nil, nil
}

// tryDecode parses v as flag would, into a scratch value, and checks it
// against the flag's enum: kong checks enums only after every value is
// applied, when it no longer knows where a value came from.
func tryDecode(flag *kong.Flag, v any) error {
	target := reflect.New(flag.Target.Type()).Elem()
	if target.Kind() == reflect.Map {
		target.Set(reflect.MakeMap(target.Type()))
	}
	scan := kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: v})
	if err := flag.Mapper.Decode(&kong.DecodeContext{Value: flag.Value, Scan: scan}, target); err != nil {
		return err
	}
	if flag.Enum != "" && target.Kind() == reflect.String {
		choices := strings.Split(flag.Enum, ",")
		if !slices.Contains(choices, target.String()) {
			return fmt.Errorf("want one of %s", strings.Join(choices, ", "))
		}
	}
	return nil
}

// envError is an environment variable whose value does not parse.
type envError struct {
	name, value string
	secret      bool // the value may be a secret: never print it
	err         error
}

func (e *envError) Error() string {
	why := e.err.Error()
	if bv, ok := errors.AsType[*badValueError](e.err); ok {
		why = bv.why // the value is quoted below
	}
	if e.secret {
		return fmt.Sprintf("%s: %s", e.name, why)
	}
	return fmt.Sprintf("%s=%q: %s", e.name, e.value, why)
}

func (e *envError) Unwrap() error { return e.err }
