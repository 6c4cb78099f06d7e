package embedded_test

import (
	"fmt"
	"log"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
)

func Example() {
	cfg := embedded.DefaultConfig()
	cfg.Port = embedded.RandomPort
	srv, err := embedded.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()

	nc, err := nats.Connect(srv.ClientURL(), srv.ConnectOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("greet")
	if err != nil {
		log.Fatal(err)
	}
	if err := nc.Publish("greet", []byte("hello")); err != nil {
		log.Fatal(err)
	}
	msg, err := sub.NextMsg(cfg.ReadyTimeout)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg.Data))
	// Output: hello
}

// An in-process server has no TCP listener; ConnectOptions carries the
// in-process connection, so the same Connect call works.
func Example_dontListen() {
	cfg := embedded.DefaultConfig()
	cfg.DontListen = true
	srv, err := embedded.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()

	nc, err := nats.Connect(srv.ClientURL(), srv.ConnectOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	fmt.Printf("url=%q connected=%v\n", srv.ClientURL(), nc.IsConnected())
	// Output: url="" connected=true
}
