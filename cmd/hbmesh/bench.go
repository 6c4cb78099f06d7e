package main

import (
	"context"
	"errors"
	"flag"

	"github.com/hbmesh/hbmesh/internal/bench"
)

// runBench hands the command line to package bench, which owns the
// benchmarks' flags (nats-server style: -s URL, -quick).
func runBench(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		bench.Usage(e.stderr)
		return usagef("missing benchmark name (want one of %v)", bench.Names())
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		bench.Usage(e.stdout)
		return errHelpShown
	}
	err := bench.Run(ctx, args[0], args[1:], e.stdout, e.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelpShown
	case errors.Is(err, bench.ErrUsage):
		return usagef("%v", err)
	}
	return err
}
