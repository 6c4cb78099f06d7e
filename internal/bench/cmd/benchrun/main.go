// Command benchrun runs the hbmesh whole-system benchmarks without the
// hbmesh CLI: `go run ./internal/bench/cmd/benchrun <name> [flags]` is the
// same as `hbmesh bench <name> [flags]`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hbmesh/hbmesh/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "bench" { // the scale bench re-runs us as `<exe> bench _publisher`
		args = args[1:]
	}
	name := ""
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if err := bench.Run(ctx, name, args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		if errors.Is(err, bench.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
