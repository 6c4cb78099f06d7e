package monitor_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

// A whole mesh in one process: an embedded NATS server, a monitor and a
// node. The node is stopped with a goodbye, so the monitor reports it
// left; its Run returns before its connection is closed, so the goodbye
// gets out.
func Example() {
	scfg := embedded.DefaultConfig()
	scfg.Port = embedded.RandomPort
	srv, err := embedded.New(scfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()

	// Only main dials: node and monitor take a *nats.Conn. Each here has
	// its own, as they would in separate processes.
	mnc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer mnc.Close()
	nnc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nnc.Close()

	events := make(chan monitor.Event, 16)
	mcfg := monitor.DefaultConfig()
	mcfg.OnEvent = func(e monitor.Event) { events <- e } // one goroutine, in order
	m, err := monitor.New(mnc, mcfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stopMonitor := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopMonitor()
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			log.Print(err)
		}
	})
	if err := m.WaitReady(ctx); err != nil { // subscribed and proven live
		log.Fatal(err)
	}

	ncfg := node.DefaultConfig()
	ncfg.ID = "web-1"
	n, err := node.New(nnc, ncfg)
	if err != nil {
		log.Fatal(err)
	}
	nctx, stopNode := context.WithCancel(context.Background())
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(nctx) }()

	e := <-events
	fmt.Println(e.ID, e.State, e.Reason)

	stopNode()                         // the node says goodbye...
	if err := <-nodeDone; err != nil { // ...and Run returns once it is out
		log.Fatal(err)
	}
	e = <-events
	fmt.Println(e.ID, e.State, e.Reason)
	// Output:
	// web-1 alive first_beat
	// web-1 left goodbye
}

// TopPeers takes one page of the peer list: worst state first, then ids
// in natural order (web-2 before web-10), with the count of every peer
// the page was chosen from.
func ExampleMonitor_TopPeers() {
	scfg := embedded.DefaultConfig()
	scfg.Port = embedded.RandomPort
	srv, err := embedded.New(scfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	events := make(chan monitor.Event, 16)
	mcfg := monitor.DefaultConfig()
	mcfg.OnEvent = func(e monitor.Event) { events <- e }
	m, err := monitor.New(nc, mcfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			log.Print(err)
		}
	})
	if err := m.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	// Three nodes, on the monitor's connection for brevity.
	stopWeb1 := func() {}
	for _, id := range []string{"web-10", "web-2", "web-1"} {
		ncfg := node.DefaultConfig()
		ncfg.ID = id
		n, err := node.New(nc, ncfg)
		if err != nil {
			log.Fatal(err)
		}
		nctx, stopNode := context.WithCancel(ctx)
		if id == "web-1" {
			stopWeb1 = stopNode
		}
		wg.Go(func() {
			defer stopNode()
			if err := n.Run(nctx); err != nil {
				log.Print(err)
			}
		})
	}
	for range 3 { // first beats
		<-events
	}
	stopWeb1() // web-1 says goodbye
	<-events

	top, matched := m.TopPeers(2)
	for _, p := range top {
		fmt.Println(p.ID, p.State)
	}
	fmt.Println("of", matched)
	left, matched := m.TopPeers(10, monitor.StateLeft)
	fmt.Println(left[0].ID, left[0].State, "of", matched)
	// Output:
	// web-2 alive
	// web-10 alive
	// of 3
	// web-1 left of 1
}
