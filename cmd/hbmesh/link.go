package main

import (
	"net"
	"sync"
)

// link is a loopback TCP proxy to one upstream address that can be paused.
// While paused it forwards nothing in either direction, which to both ends
// looks exactly like a frozen process or a stalled network: no beats, no
// probe answers, no error. The demo routes each node through its own link
// so it can freeze the node and thaw it again.
type link struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	closed bool
	conns  map[net.Conn]struct{}

	wg sync.WaitGroup
}

// newLink listens on a random loopback port and forwards to upstream
// (host:port).
func newLink(upstream string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	l.cond = sync.NewCond(&l.mu)
	l.wg.Go(l.accept)
	return l, nil
}

// URL is the NATS URL that reaches upstream through the link.
func (l *link) URL() string { return "nats://" + l.ln.Addr().String() }

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", l.upstream)
		if err != nil {
			c.Close()
			continue
		}
		if !l.track(c, up) {
			return
		}
		l.wg.Go(func() { l.pipe(up, c) })
		l.wg.Go(func() { l.pipe(c, up) })
	}
}

func (l *link) track(cs ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		l.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, holding data back while the link is paused.
func (l *link) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: tear down both sides
		}
	}
}

// wait blocks while the link is paused; it reports false once it is closed.
func (l *link) wait() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.paused && !l.closed {
		l.cond.Wait()
	}
	return !l.closed
}

// pause freezes (true) or thaws (false) the link.
func (l *link) pause(p bool) {
	l.mu.Lock()
	l.paused = p
	l.mu.Unlock()
	l.cond.Broadcast()
}

// close stops the link, drops its connections and waits for its
// goroutines.
func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.cond.Broadcast()
	l.ln.Close()
	l.wg.Wait()
}
