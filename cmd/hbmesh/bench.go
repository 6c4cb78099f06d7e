package main

import (
	"context"
	"errors"
	"flag"
	"strings"

	"github.com/hbmesh/hbmesh/internal/bench"
)

// runBench hands the command line to package bench, which owns the
// benchmarks' flags (nats-server style: -s URL, -quick).
func runBench(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("missing benchmark name (want one of %s)", strings.Join(bench.Names(), ", "))
	}
	switch name := args[0]; {
	case name == "-h" || name == "-help" || name == "--help" || name == "help":
		bench.Usage(e.stdout)
		return errHelpShown
	case !bench.Known(name): // the names, and the children some benchmarks start
		return usagef("unknown benchmark %q (want one of %s)", name, strings.Join(bench.Names(), ", "))
	}
	err := bench.Run(ctx, args[0], args[1:], e.stdout, e.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelpShown
	case errors.Is(err, bench.ErrUsage):
		return usagef("%s", strings.TrimPrefix(err.Error(), bench.ErrUsage.Error()+": "))
	}
	return err
}
