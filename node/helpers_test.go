package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait in these tests. It is generous because
// -race on a loaded machine is slow; passing tests never wait this long.
const waitTimeout = 10 * time.Second

var subjects = wire.MustSubjects(wire.DefaultPrefix)

// startServer runs an embedded nats-server on a random local port for the
// rest of the test and returns its client URL.
func startServer(t *testing.T) string {
	t.Helper()
	return natstest.Start(t).ClientURL()
}

// connect connects to url; the connection is closed when the test ends.
func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return natstest.Connect(t, url, opts...)
}

// subscribe delivers every message on subj to the returned channel. The
// subscription is registered with the server before it returns.
func subscribe(t *testing.T, nc *nats.Conn, subj string) chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(subj, ch)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subj, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return ch
}

// nextBeat waits for the next message on ch and decodes it as a beat.
func nextBeat(t *testing.T, ch <-chan *nats.Msg) (wire.Beat, *nats.Msg) {
	t.Helper()
	select {
	case m := <-ch:
		b, err := wire.DecodeBeat(m.Data)
		if err != nil {
			t.Fatalf("decode beat %s: %v", m.Data, err)
		}
		return b, m
	case <-time.After(waitTimeout):
		t.Fatal("no beat within", waitTimeout)
	}
	panic("unreachable")
}

// running is a Node whose Run is executing in a goroutine the test owns.
type running struct {
	*node.Node
	cancel context.CancelFunc
	done   chan error
}

// start builds a node and runs it until the test ends or stop is called.
func start(t *testing.T, nc *nats.Conn, cfg node.Config) *running {
	t.Helper()
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns its result. It may be called more than once.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns Run's result without cancelling it.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
		return nil
	}
}

// eventually polls cond with short waits until it holds or the deadline
// passes. It is for state with no notification to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// proxy is a TCP relay that can cut and refuse connections, so one client
// can be disconnected while everything else stays connected.
type proxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]struct{}
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &proxy{ln: ln, upstream: strings.TrimPrefix(upstream, "nats://"), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Block()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err == nil && !p.track(c, up) {
			err = errors.New("blocked")
		}
		if err != nil {
			c.Close()
			if up != nil {
				up.Close()
			}
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Block cuts every relayed connection and refuses new ones.
func (p *proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Unblock accepts connections again.
func (p *proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}
