package bench

import (
	"context"
	"fmt"
	"strconv"
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
	seqs     []uint64
	// killAt[i], if non-zero, is when node i dies: no beat due at or after
	// it is sent, and no goodbye. Set before run; read-only during it.
	killAt []time.Time
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
		ids: make([]string, n), subjects: make([]string, n), seqs: make([]uint64, n),
		killAt: make([]time.Time, n), lastSent: make([]time.Time, n),
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

// run publishes on schedule from start until ctx is done.
func (f *fleet) run(ctx context.Context, start time.Time) error {
	n := int64(len(f.ids))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var k int64 // next slot: node k%n, due at start + k*interval/n
	for {
		now := time.Now()
		for {
			due := start.Add(time.Duration(k * int64(f.interval) / n))
			if due.After(now) {
				break
			}
			i := k % n
			k++
			if ka := f.killAt[i]; !ka.IsZero() && !due.Before(ka) {
				continue
			}
			f.seqs[i]++
			f.beat.ID, f.beat.Seq, f.beat.TS = f.ids[i], f.seqs[i], now.UTC()
			f.buf = wire.AppendBeat(f.buf[:0], &f.beat)
			if err := f.nc.Publish(f.subjects[i], f.buf); err != nil {
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
