// Command barenode is the floor of a NATS node for `hbmesh bench node`:
// a bare nats.go client that publishes fixed bytes on one subject every
// interval and answers requests on <subject>.probe with them. It encodes
// nothing, keeps no state and logs nothing, so the difference between it
// and `hbmesh node` is what hbmesh adds to a Go NATS client.
//
//	cd bench && go build -o ../bin/bench/ ./cmd/barenode
//	barenode -s nats://127.0.0.1:4222 -subject hb.bare-1 -interval 1s -payload '{"v":1,...}'
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "barenode:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("s", nats.DefaultURL, "NATS server URL")
	subject := flag.String("subject", "hb.bare-1", "subject to publish on")
	interval := flag.Duration("interval", time.Second, "publish interval")
	payload := flag.String("payload", "{}", "bytes to publish")
	flag.Parse()

	nc, err := nats.Connect(*url, nats.Name("barenode"))
	if err != nil {
		return err
	}
	defer nc.Close()
	body := []byte(*payload)
	if _, err := nc.Subscribe(*subject+".probe", func(m *nats.Msg) { _ = m.Respond(body) }); err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
			if err := nc.Publish(*subject, body); err != nil {
				return err
			}
		}
	}
}
