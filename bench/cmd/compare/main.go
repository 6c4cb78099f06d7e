// Command compare measures, in one run on loopback, how long hbmesh and
// hashicorp/memberlist (v0.7.0, DefaultLANConfig) take from a member's
// crash to its detection at every other member, and how many bytes each
// puts on the wire per member per second in the steady state.
//
//	cd bench && go run ./cmd/compare [-n 10,50] [-trials 3] [-steady 5s]
//
// It lives in its own module so that the hbmesh module never depends on
// memberlist. Progress goes to stderr; stdout gets one JSON line.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/pause"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

type result struct {
	System            string  `json:"system"`
	N                 int     `json:"n"`
	Trials            int     `json:"trials"`
	Detections        int     `json:"detections"`
	Missed            int     `json:"missed"`
	MedianDetectMS    float64 `json:"median_detect_ms"`
	MaxDetectMS       float64 `json:"max_detect_ms"`
	BytesPerMemberSec float64 `json:"wire_bytes_per_member_per_sec"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	sizes := fs.String("n", "10,50", "comma-separated cluster sizes")
	trials := fs.Int("trials", 3, "crashes per system and size")
	steady := fs.Duration("steady", 5*time.Second, "steady-state window for the byte count")
	timeout := fs.Duration("timeout", 60*time.Second, "give up on a detection after this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var out []result
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			return fmt.Errorf("bad size %q", s)
		}
		for _, sys := range []string{"memberlist", "hbmesh"} {
			r := result{System: sys, N: n, Trials: *trials}
			var lat []float64
			var bps []float64
			for t := range *trials {
				var l []float64
				var b float64
				var err error
				if sys == "memberlist" {
					l, b, err = memberlistTrial(ctx, n, *steady, *timeout)
				} else {
					l, b, err = hbmeshTrial(ctx, n, *steady, *timeout)
				}
				if err != nil {
					return fmt.Errorf("%s n=%d trial %d: %w", sys, n, t, err)
				}
				r.Missed += n - 1 - len(l)
				lat = append(lat, l...)
				bps = append(bps, b)
				fmt.Fprintf(os.Stderr, "%-10s n=%-3d trial %d: %d/%d detected, median %.0f ms, max %.0f ms, %.0f B/member/s\n",
					sys, n, t+1, len(l), n-1, pct(l, .5), pct(l, 1), b)
			}
			r.Detections = len(lat)
			r.MedianDetectMS = round(pct(lat, .5))
			r.MaxDetectMS = round(pct(lat, 1))
			r.BytesPerMemberSec = round(pct(bps, .5))
			out = append(out, r)
		}
	}
	b, err := json.Marshal(map[string]any{"bench": "compare", "results": out})
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

// ---- memberlist ----

// countingTransport counts every byte memberlist sends, UDP and TCP. Each
// byte sent on loopback crosses the wire once, so sent bytes are the wire
// bytes.
type countingTransport struct {
	*memberlist.NetTransport
	sent    *atomic.Int64
	streams <-chan net.Conn
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.sent.Add(int64(len(b)))
	return t.NetTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.sent.Add(int64(len(b)))
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, d)
	return wrap(c, err, t.sent)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, d)
	return wrap(c, err, t.sent)
}

func (t *countingTransport) StreamCh() <-chan net.Conn {
	// Accepted streams write too (push/pull replies).
	return t.streams
}

// countConn counts bytes written.
type countConn struct {
	net.Conn
	sent *atomic.Int64
	rcvd *atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.rcvd != nil {
		c.rcvd.Add(int64(n))
	}
	return n, err
}

func wrap(c net.Conn, err error, sent *atomic.Int64) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: c, sent: sent}, nil
}

type events struct {
	mu   sync.Mutex
	dead map[string]time.Time
}

func (e *events) NotifyJoin(*memberlist.Node)   {}
func (e *events) NotifyUpdate(*memberlist.Node) {}
func (e *events) NotifyLeave(n *memberlist.Node) {
	// The victim never calls Leave, so every NotifyLeave of it is a
	// failure detection. (v0.7.0 passes the embedded Node, whose State
	// field is not updated to dead, so it cannot be checked here.)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.dead[n.Name]; !ok {
		e.dead[n.Name] = time.Now()
	}
}

func memberlistTrial(ctx context.Context, n int, steady, timeout time.Duration) ([]float64, float64, error) {
	var sent atomic.Int64
	quiet := log.New(io.Discard, "", 0)
	lists := make([]*memberlist.Memberlist, n)
	evs := make([]*events, n)
	defer func() {
		for _, m := range lists {
			if m != nil {
				_ = m.Shutdown()
			}
		}
	}()
	for i := range n {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: quiet})
		if err != nil {
			return nil, 0, err
		}
		ct := &countingTransport{NetTransport: nt, sent: &sent}
		ct.streams = countStreams(nt.StreamCh(), &sent)
		cfg := memberlist.DefaultLANConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.BindAddr = "127.0.0.1"
		cfg.BindPort = nt.GetAutoBindPort()
		cfg.AdvertiseAddr = "127.0.0.1"
		cfg.AdvertisePort = cfg.BindPort
		cfg.Transport = ct
		cfg.Logger = quiet
		evs[i] = &events{dead: map[string]time.Time{}}
		cfg.Events = evs[i]
		m, err := memberlist.Create(cfg)
		if err != nil {
			_ = nt.Shutdown()
			return nil, 0, err
		}
		lists[i] = m
		if i > 0 {
			if _, err := m.Join([]string{lists[0].LocalNode().Address()}); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		for _, m := range lists {
			if m.NumMembers() != n {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, 0, fmt.Errorf("memberlist did not converge: %w", err)
	}
	b0, t0 := sent.Load(), time.Now()
	if err := pause.For(ctx, steady); err != nil {
		return nil, 0, err
	}
	bps := float64(sent.Load()-b0) / time.Since(t0).Seconds() / float64(n)

	// Crash: shut the victim's transport down without Leave, so the
	// others must detect it.
	victim := n - 1
	name := lists[victim].LocalNode().Name
	crash := time.Now()
	if err := lists[victim].Shutdown(); err != nil {
		return nil, 0, err
	}
	lists[victim] = nil
	_ = waitFor(ctx, timeout, func() bool {
		for i := range victim {
			evs[i].mu.Lock()
			_, ok := evs[i].dead[name]
			evs[i].mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	var lat []float64
	for i := range victim {
		evs[i].mu.Lock()
		if at, ok := evs[i].dead[name]; ok {
			lat = append(lat, ms(at.Sub(crash)))
		}
		evs[i].mu.Unlock()
	}
	return lat, bps, nil
}

// countStreams wraps accepted TCP streams so their writes are counted.
func countStreams(in <-chan net.Conn, sent *atomic.Int64) <-chan net.Conn {
	out := make(chan net.Conn)
	go func() {
		defer close(out)
		for c := range in {
			out <- &countConn{Conn: c, sent: sent}
		}
	}()
	return out
}

// ---- hbmesh ----

// countDialer counts every byte a NATS client writes and reads: together,
// over all clients, that is every byte crossing the wire to and from the
// server, protocol included.
type countDialer struct{ bytes *atomic.Int64 }

func (d countDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: c, sent: d.bytes, rcvd: d.bytes}, nil
}

func hbmeshTrial(ctx context.Context, n int, steady, timeout time.Duration) ([]float64, float64, error) {
	cfg := embedded.DefaultConfig()
	cfg.Port = embedded.RandomPort
	srv, err := embedded.New(cfg)
	if err != nil {
		return nil, 0, err
	}
	if err := srv.Start(); err != nil {
		return nil, 0, err
	}
	defer srv.Shutdown()
	var wire atomic.Int64
	dial := nats.SetCustomDialer(countDialer{&wire})
	connect := func(name string) (*nats.Conn, error) {
		return nats.Connect(srv.ClientURL(), nats.Name(name), dial, nats.MaxReconnects(0))
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var conns []*nats.Conn
	defer func() {
		cancel()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	dead := make([]map[string]time.Time, n)
	mons := make([]*monitor.Monitor, n)
	monCancel := make([]context.CancelFunc, n)
	nodeConns := make([]*nats.Conn, n)
	for i := range n {
		id := fmt.Sprintf("h%d", i)
		ncN, err := connect(id + "-node")
		if err != nil {
			return nil, 0, err
		}
		ncM, err := connect(id + "-monitor")
		if err != nil {
			return nil, 0, err
		}
		conns = append(conns, ncN, ncM)
		nodeConns[i] = ncN
		ncfg := node.DefaultConfig()
		ncfg.ID, ncfg.Host = id, id+".example.com"
		nd, err := node.New(ncN, ncfg)
		if err != nil {
			return nil, 0, err
		}
		dead[i] = map[string]time.Time{}
		mcfg := monitor.DefaultConfig()
		mcfg.ID = id + "-mon"
		mcfg.OnEvent = func(ev monitor.Event) {
			if ev.State == monitor.StateDead {
				mu.Lock()
				if _, ok := dead[i][ev.ID]; !ok {
					dead[i][ev.ID] = time.Now()
				}
				mu.Unlock()
			}
		}
		m, err := monitor.New(ncM, mcfg)
		if err != nil {
			return nil, 0, err
		}
		mons[i] = m
		mctx, mcancel := context.WithCancel(runCtx)
		monCancel[i] = mcancel
		wg.Go(func() { _ = m.Run(mctx) })
		wg.Go(func() { _ = nd.Run(runCtx) })
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		for _, m := range mons {
			if m.Stats().Peers[monitor.StateAlive] != n {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, 0, fmt.Errorf("hbmesh monitors did not see every node: %w", err)
	}
	b0, t0 := wire.Load(), time.Now()
	if err := pause.For(ctx, steady); err != nil {
		return nil, 0, err
	}
	bps := float64(wire.Load()-b0) / time.Since(t0).Seconds() / float64(n)

	// Crash: the victim's node connection closes with no goodbye (its Run
	// sees the close and returns without publishing), and its monitor
	// goes with it.
	victim := n - 1
	name := fmt.Sprintf("h%d", victim)
	crash := time.Now()
	nodeConns[victim].Close()
	monCancel[victim]()
	_ = waitFor(ctx, timeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range victim {
			if _, ok := dead[i][name]; !ok {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	var lat []float64
	for i := range victim {
		if at, ok := dead[i][name]; ok {
			lat = append(lat, ms(at.Sub(crash)))
		}
	}
	return lat, bps, nil
}

// ---- helpers ----

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		if err := pause.For(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
