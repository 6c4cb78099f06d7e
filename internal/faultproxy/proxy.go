// Package faultproxy is a loopback TCP proxy that tests switch between
// forwarding, cutting and blackholing, to put a network fault between a
// NATS client and its server without root, iptables or a network
// namespace.
//
// # Modes
//
// A [Proxy] is always in one of three modes:
//
//   - open (the initial mode, and the one [Proxy.Heal] restores): every
//     accepted connection is dialled through to the target and bytes are
//     copied both ways.
//   - cut ([Proxy.Cut]): every live connection is reset (RST, not FIN) and
//     new connections are accepted and reset at once, like a peer whose
//     process died or a firewall that rejects.
//   - blackhole ([Proxy.Blackhole]): connections stay open but no byte is
//     forwarded in either direction, and new connections are accepted but
//     never answered, which is what a real partition looks like to both
//     ends: silence, with no error, until a timeout fires. Bytes read
//     during the blackhole are held, as the kernel of a partitioned peer
//     holds unacknowledged segments, and delivered on Heal.
//
// # Lifecycle
//
// Unlike most hbmesh constructors, [New] listens: a proxy is a test
// fixture whose address must be known before anything connects to it, as
// with httptest.NewServer. [Proxy.Close] stops the listener, closes every
// connection and returns once every goroutine the proxy started has
// exited.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is what a [Proxy] does with traffic.
type Mode int

// The modes of a Proxy.
const (
	Open Mode = iota
	Cut
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case Open:
		return "open"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DialTimeout bounds how long the proxy waits to connect to its target.
const DialTimeout = 5 * time.Second

// Proxy forwards TCP connections from Addr to a target, with faults
// switched on and off by Cut, Blackhole and Heal. Its methods are safe for
// concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	// mu guards every field below.
	mu     sync.Mutex
	mode   Mode
	healed chan struct{} // closed when mode becomes Open; replaced when it leaves Open
	conns  map[*pair]struct{}
	closed bool
	done   chan struct{} // closed by Close
}

// pair is one proxied connection: the accepted client side and, once
// dialled, the upstream side.
type pair struct {
	client net.Conn
	// upstream is set once, under Proxy.mu, before the pumps start.
	upstream net.Conn
	killed   chan struct{} // closed by kill
	once     sync.Once
}

// kill closes both sides; reset sends RST instead of FIN.
func (c *pair) kill(reset bool, upstream net.Conn) {
	c.once.Do(func() {
		close(c.killed)
		for _, nc := range []net.Conn{c.client, upstream} {
			if nc == nil {
				continue
			}
			if tc, ok := nc.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			_ = nc.Close()
		}
	})
}

// New listens on listenAddr (use "127.0.0.1:0" for a free port) and
// forwards connections to target, starting in mode Open.
func New(listenAddr, target string) (*Proxy, error) {
	if target == "" {
		return nil, errors.New("faultproxy: empty target")
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen %s: %w", listenAddr, err)
	}
	healed := make(chan struct{})
	close(healed)
	p := &Proxy{
		ln:     ln,
		target: target,
		healed: healed,
		conns:  map[*pair]struct{}{},
		done:   make(chan struct{}),
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is Addr as a nats:// URL.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode reports the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Conns reports how many client connections the proxy holds.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Cut resets every live connection and resets new ones as they arrive,
// until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.leaveOpen()
	p.mode = Cut
	victims := p.takeConns()
	p.mu.Unlock()
	for _, v := range victims {
		v.c.kill(true, v.up)
	}
}

// Blackhole stops forwarding bytes in both directions on every connection,
// live or new, without closing any, until Heal.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaveOpen()
	p.mode = Blackhole
}

// Heal returns to forwarding. Connections held by a blackhole resume and
// receive the bytes held for them; connections reset by Cut stay closed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == Open {
		return
	}
	p.mode = Open
	close(p.healed)
}

// Close stops listening, closes every connection and waits for every
// goroutine the proxy started. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	var err error
	if !p.closed {
		p.closed = true
		close(p.done)
		err = p.ln.Close()
	}
	victims := p.takeConns()
	p.mu.Unlock()
	for _, v := range victims {
		v.c.kill(false, v.up)
	}
	p.wg.Wait()
	return err
}

// leaveOpen must be called with mu held before mode changes.
func (p *Proxy) leaveOpen() {
	if p.mode == Open {
		p.healed = make(chan struct{})
	}
}

type victim struct {
	c  *pair
	up net.Conn
}

// takeConns empties the connection table; mu must be held.
func (p *Proxy) takeConns() []victim {
	vs := make([]victim, 0, len(p.conns))
	for c := range p.conns {
		vs = append(vs, victim{c, c.upstream})
	}
	clear(p.conns)
	return vs
}

func (p *Proxy) accept() {
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			// The listener is closed (Close) or broken; either way no
			// more connections will come.
			return
		}
		c := &pair{client: nc, killed: make(chan struct{})}
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			c.kill(false, nil)
			return
		case p.mode == Cut:
			p.mu.Unlock()
			c.kill(true, nil)
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(c) })
	}
}

// forget removes c from the table and closes it.
func (p *Proxy) forget(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	up := c.upstream
	p.mu.Unlock()
	c.kill(false, up)
}

// waitOpen blocks until the proxy forwards, reporting false if c was
// killed or the proxy closed first.
func (p *Proxy) waitOpen(c *pair) bool {
	for {
		p.mu.Lock()
		mode, healed := p.mode, p.healed
		p.mu.Unlock()
		if mode == Open {
			return true
		}
		select {
		case <-healed:
		case <-c.killed:
			return false
		case <-p.done:
			return false
		}
	}
}

func (p *Proxy) serve(c *pair) {
	defer p.forget(c)
	// A connection that arrives during a blackhole is not answered until
	// Heal, as if its SYN had been lost.
	if !p.waitOpen(c) {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, DialTimeout)
	if err != nil {
		return
	}
	p.mu.Lock()
	if _, live := p.conns[c]; !live {
		// Cut or Close took c while we dialled.
		p.mu.Unlock()
		_ = up.Close()
		return
	}
	c.upstream = up
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(c, up, up, c.client) })
	wg.Go(func() { p.pump(c, up, c.client, up) })
	wg.Wait()
}

// pump copies src to dst while the proxy is open. When either direction
// ends, the whole connection is torn down: NATS never half-closes.
func (p *Proxy) pump(c *pair, up, dst, src net.Conn) {
	defer c.kill(false, up)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitOpen(c) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: tear down both ways
		}
	}
}
