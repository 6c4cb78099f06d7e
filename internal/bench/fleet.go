package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/wire"
)

// fleet simulates n nodes beating every interval from one goroutine, with
// phases spread evenly: node i beats at start + i*interval/n + k*interval.
// It replaces n goroutines and n timers with one loop that wakes every
// millisecond and publishes whatever has come due.
type fleet struct {
	nc       *nats.Conn
	interval time.Duration
	ids      []string
	subjects []string
	seqs     []atomic.Uint64 // read by probe answers (crash.go) while run writes
	// killAt[i], if non-zero, is when node i dies: no beat due at or after
	// it is sent, and no goodbye. Set before run; read-only during it.
	killAt []time.Time
	// conns[i], if set, is node i's own connection, which its beats go
	// through and which run closes at killAt[i]; the others share nc.
	// Set before run; nil for a fleet that shares one connection.
	conns []*nats.Conn
	// killed[i] is when run killed node i: when it closed its connection,
	// or when the first beat it withheld was due. Read it only after run
	// has returned.
	killed []time.Time
	// lastSent[i] is when node i's latest beat was handed to the
	// connection. Written by run; read it only after run has returned.
	lastSent []time.Time
	sent     uint64
	beat     wire.Beat
	buf      []byte
}

func newFleet(nc *nats.Conn, prefix string, n int, interval time.Duration) *fleet {
	subj := wire.MustSubjects(wire.DefaultPrefix)
	f := &fleet{
		nc: nc, interval: interval,
		ids: make([]string, n), subjects: make([]string, n), seqs: make([]atomic.Uint64, n),
		killAt: make([]time.Time, n), killed: make([]time.Time, n), lastSent: make([]time.Time, n),
		beat: wire.Beat{V: wire.Version, Host: "sim.example.com", PID: 4242, Boot: "0123456789abcdef",
			IntervalMS: interval.Milliseconds(), Status: wire.StatusAlive, Version: "v0.0.0-bench"},
		buf: make([]byte, 0, wire.MaxPayload),
	}
	for i := range n {
		f.ids[i] = prefix + strconv.Itoa(i)
		f.subjects[i] = subj.Beat(f.ids[i])
	}
	return f
}

// seqOf returns node i's latest seq; safe while run runs.
func (f *fleet) seqOf(i int) uint64 { return f.seqs[i].Load() }

// run publishes on schedule from start until ctx is done.
func (f *fleet) run(ctx context.Context, start time.Time) error {
	n := int64(len(f.ids))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	// The nodes with their own connection, in the order they die.
	var crashes []int
	for i, nc := range f.conns {
		if nc != nil && !f.killAt[i].IsZero() {
			crashes = append(crashes, i)
		}
	}
	slices.SortFunc(crashes, func(a, b int) int { return f.killAt[a].Compare(f.killAt[b]) })
	var k int64 // next slot: node k%n, due at start + k*interval/n
	for {
		now := time.Now()
		for len(crashes) > 0 && !f.killAt[crashes[0]].After(now) {
			// No goodbye, no reconnect: the socket closes as a killed
			// process's does.
			i := crashes[0]
			crashes = crashes[1:]
			f.killed[i] = time.Now()
			f.conns[i].Close()
		}
		for {
			due := start.Add(time.Duration(k * int64(f.interval) / n))
			if due.After(now) {
				break
			}
			i := k % n
			k++
			if ka := f.killAt[i]; !ka.IsZero() && !due.Before(ka) {
				if f.killed[i].IsZero() {
					f.killed[i] = ka
				}
				continue
			}
			if !f.killed[i].IsZero() {
				// Due before its kill, but the loop ran late and closed its
				// connection first: a killed process sends nothing late.
				continue
			}
			nc := f.nc
			if f.conns != nil && f.conns[i] != nil {
				nc = f.conns[i]
			}
			f.beat.ID, f.beat.Seq, f.beat.TS = f.ids[i], f.seqs[i].Add(1), now.UTC()
			f.buf = wire.AppendBeat(f.buf[:0], &f.beat)
			if err := nc.Publish(f.subjects[i], f.buf); err != nil {
				return fmt.Errorf("bench: fleet publish: %w", err)
			}
			f.lastSent[i] = now
			f.sent++
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
