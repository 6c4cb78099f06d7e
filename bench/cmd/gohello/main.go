// Command gohello is the floor of a Go process for `hbmesh bench node`:
// it prints one line and sleeps until killed, so its RSS and CPU are the
// Go runtime's and nothing else's.
//
//	cd bench && go build -o ../bin/bench/ ./cmd/gohello
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	fmt.Fprintln(os.Stderr, "hello")
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
