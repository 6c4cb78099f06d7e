package faultproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking read in these tests.
const wait = 5 * time.Second

// quiet is how long a blackholed connection must stay silent to pass.
const quiet = 200 * time.Millisecond

// echo starts a line echo server and returns its address. Every goroutine
// it starts has exited when the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func start(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

func (c *client) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
}

// recv reads one line within d.
func (c *client) recv(d time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	s, err := c.r.ReadString('\n')
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s, err
}

func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	got, err := c.recv(wait)
	if err != nil || got != want {
		t.Fatalf("recv = %q, %v; want %q", got, err, want)
	}
}

func (c *client) expectSilence(t *testing.T) {
	t.Helper()
	got, err := c.recv(quiet)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("recv = %q, %v; want silence (a read timeout)", got, err)
	}
}

// expectClosed waits for the connection to end; reset says whether it
// must end with a reset rather than a clean EOF.
func (c *client) expectClosed(t *testing.T, reset bool) {
	t.Helper()
	got, err := c.recv(wait)
	switch {
	case err == nil:
		t.Fatalf("recv = %q; want the connection closed", got)
	case reset && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("recv error %v; want a connection reset", err)
	case !reset && errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("recv timed out; want the connection closed")
	}
}

// expectReset dials addr and expects the connection reset. The proxy
// resets a cut connection as soon as it accepts it, which can land before
// or after the client's connect returns, so either is a reset.
func expectReset(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial error %v; want a connection reset", err)
		}
		return
	}
	t.Cleanup(func() { c.Close() })
	(&client{c, bufio.NewReader(c)}).expectClosed(t, true)
}

func TestOpenForwardsBothWays(t *testing.T) {
	p := start(t, echo(t))
	if p.Mode() != faultproxy.Open {
		t.Fatalf("Mode = %v, want open", p.Mode())
	}
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	a.send(t, "hello")
	b.send(t, "world")
	a.expect(t, "hello")
	b.expect(t, "world")
}

func TestCutResetsLiveAndNewConnections(t *testing.T) {
	p := start(t, echo(t))
	live := dial(t, p.Addr())
	live.send(t, "before")
	live.expect(t, "before")

	p.Cut()
	live.expectClosed(t, true)
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns = %d after Cut, want 0", n)
	}
	expectReset(t, p.Addr())

	p.Heal()
	again := dial(t, p.Addr())
	again.send(t, "after")
	again.expect(t, "after")
}

func TestBlackholeHoldsBytesUntilHeal(t *testing.T) {
	p := start(t, echo(t))
	live := dial(t, p.Addr())
	live.send(t, "one")
	live.expect(t, "one")

	p.Blackhole()
	live.send(t, "two")
	live.expectSilence(t)
	late := dial(t, p.Addr()) // accepted, never answered
	late.send(t, "three")
	late.expectSilence(t)
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns = %d during blackhole, want 2 (kept open)", n)
	}

	p.Heal()
	live.expect(t, "two")
	late.expect(t, "three")
	live.send(t, "four")
	live.expect(t, "four")
}

func TestCutDuringBlackholeResets(t *testing.T) {
	p := start(t, echo(t))
	live := dial(t, p.Addr())
	live.send(t, "one")
	live.expect(t, "one")
	p.Blackhole()
	held := dial(t, p.Addr())
	live.send(t, "lost")
	p.Cut()
	live.expectClosed(t, true)
	held.expectClosed(t, true)
}

func TestClientCloseIsForwarded(t *testing.T) {
	p := start(t, echo(t))
	c := dial(t, p.Addr())
	c.send(t, "x")
	c.expect(t, "x")
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed(t, false)
}

func TestTargetDownClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, addr)
	c := dial(t, p.Addr())
	c.expectClosed(t, false)
}

func TestCloseJoinsAndIsIdempotent(t *testing.T) {
	p, err := faultproxy.New("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	c.send(t, "x")
	c.expect(t, "x")
	p.Blackhole()
	_ = dial(t, p.Addr())
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c.expectClosed(t, false)
	if _, err := net.DialTimeout("tcp", p.Addr(), wait); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct{ name, listen, target string }{
		{"empty target", "127.0.0.1:0", ""},
		{"bad listen address", "256.0.0.1:0", "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := faultproxy.New(tc.listen, tc.target); err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[faultproxy.Mode]string{faultproxy.Open: "open", faultproxy.Cut: "cut", faultproxy.Blackhole: "blackhole", 9: "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
