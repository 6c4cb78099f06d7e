package bench

import (
	"net"
	"sync"
	"time"
)

// gateDialer dials TCP connections whose reads can be paused. Pausing a
// consumer's reads makes the server park everything published meanwhile
// in that client's outbound buffer; resuming then lets the consumer drain
// a known backlog as fast as it can, so the measured rate is the
// consumer's own — socket read, protocol parse, delivery, callback — and
// never the publisher's.
type gateDialer struct {
	mu   sync.Mutex
	open chan struct{} // closed while reads flow
}

func newGateDialer() *gateDialer {
	ch := make(chan struct{})
	close(ch)
	return &gateDialer{open: ch}
}

func (g *gateDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: g}, nil
}

// pause makes every later Read wait for resume. A Read already blocked in
// the socket is not interrupted: it returns what arrives next.
func (g *gateDialer) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

func (g *gateDialer) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gateDialer) gate() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

type gatedConn struct {
	net.Conn
	g *gateDialer
}

func (c *gatedConn) Read(p []byte) (int, error) {
	<-c.g.gate()
	return c.Conn.Read(p)
}
