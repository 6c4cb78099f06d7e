package monitor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/wire"
)

// benchFleet is a table fed directly, as onBeats feeds it after decoding:
// n peers with a 1s interval whose beats are spread evenly over the second.
type benchFleet struct {
	tab   *table
	cfg   Config
	now   time.Time
	step  time.Duration // 1s / n: time between two consecutive beats
	ids   []string
	raws  []wire.RawBeat
	seqs  []uint64
	next  int
	nextT time.Time // next sweep
}

func newBenchFleet(b *testing.B, n int) *benchFleet {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "node-" + strconv.Itoa(i)
	}
	return newBenchFleetOf(b, ids)
}

// newBenchFleetOf is newBenchFleet with the given ids, beating in that
// order.
func newBenchFleetOf(b *testing.B, ids []string) *benchFleet {
	b.Helper()
	n := len(ids)
	cfg := DefaultConfig()
	cfg.MaxPeers = n
	// The benchmarks drive time in jumps; the monitor's own stall detection
	// is not what they measure.
	cfg.StallThreshold = time.Hour
	cfg.fillDefaults()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &benchFleet{cfg: cfg, now: start, step: time.Second / time.Duration(n),
		ids: make([]string, n), raws: make([]wire.RawBeat, n), seqs: make([]uint64, n)}
	f.tab = newTable(&f.cfg, start)
	f.tab.st.rtt = newHistogram(ProbeRTTBuckets())
	f.tab.st.overshoot = newHistogram(OvershootBuckets())
	for i, id := range ids {
		f.ids[i] = id
		f.raws[i] = wire.RawBeat{V: 1, ID: []byte(id), Host: []byte("host-" + id),
			Boot: []byte("0123456789abcdef"), IntervalMS: 1000, Version: []byte("v1.0.0")}
	}
	// Two rounds: the second beat of each peer promotes it out of
	// probation (see peerTable), as in a running monitor.
	for range 2 * n {
		f.beat()
	}
	f.nextT = f.now.Add(cfg.Resolution)
	f.tab.events = f.tab.events[:0]
	return f
}

// monitor returns a Monitor over f's table, never Run, its clock stopped
// at f's time: for the snapshot benchmarks.
func (f *benchFleet) monitor() *Monitor {
	m := &Monitor{cfg: f.cfg, tab: f.tab}
	m.cfg.Clock = clock.NewFake(f.now)
	return m
}

// beat advances time by one step and delivers the next peer's next beat.
func (f *benchFleet) beat() string {
	i := f.next
	f.next++
	if f.next == len(f.ids) {
		f.next = 0
	}
	f.now = f.now.Add(f.step)
	f.seqs[i]++
	f.raws[i].Seq = f.seqs[i]
	return f.tab.observe(f.ids[i], &f.raws[i], f.now)
}

// BenchmarkKnownPeerUpdate is the per-beat cost of the detector for a peer
// already in the table: LRU lookup, seq/flood checks, phi estimate, history
// bits. It must not allocate and must not touch the heap. The with_sweep
// variants also run the 10ms sweep on schedule, so the lazy re-push of
// each peer's deadline (about one pop and push per peer every two
// intervals) is amortised into the per-beat figure.
func BenchmarkKnownPeerUpdate(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		for _, sweep := range []bool{false, true} {
			name := fmt.Sprintf("peers=%d", n)
			if sweep {
				name += "/with_sweep"
			}
			b.Run(name, func(b *testing.B) {
				f := newBenchFleet(b, n)
				b.ReportAllocs()
				for b.Loop() {
					if r := f.beat(); r != "" {
						b.Fatalf("beat rejected: %s", r)
					}
					if sweep && !f.now.Before(f.nextT) {
						f.tab.sweep(f.now)
						f.nextT = f.nextT.Add(f.cfg.Resolution)
					}
				}
				if len(f.tab.events) != 0 {
					b.Fatalf("%d unexpected events, first %v", len(f.tab.events), f.tab.events[0])
				}
			})
		}
	}
}

// BenchmarkSweepNothingExpired is the cost of one sweep tick when no
// deadline has passed: a look at the heap's minimum, whatever the size.
func BenchmarkSweepNothingExpired(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			f := newBenchFleet(b, n)
			b.ReportAllocs()
			for b.Loop() {
				f.tab.sweep(f.now)
			}
			if len(f.tab.events) != 0 {
				b.Fatal("unexpected events")
			}
		})
	}
}

// BenchmarkSweepKExpired is the cost of one sweep that turns exactly k of
// 100k silent peers suspect: k pops, k transitions with their events and
// probe requests, k pushes of the dead deadline. A fresh table is built,
// untimed, whenever the previous one has no alive peer left.
func BenchmarkSweepKExpired(b *testing.B) {
	const n = 100_000
	for _, k := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("peers=%d/k=%d", n, k), func(b *testing.B) {
			var f *benchFleet
			var v time.Time
			left := 0
			b.ReportAllocs()
			for b.Loop() {
				if left < k {
					b.StopTimer()
					f = newBenchFleet(b, n)
					// Peer i's suspect deadline is start+1s+(i+1)*step+2s
					// and the fleet's last beat was at start+2s, so the first
					// deadline is one second plus a step after it.
					v = f.now.Add(time.Second + f.step/2)
					left = n
					b.StartTimer()
				}
				v = v.Add(time.Duration(k) * f.step)
				f.tab.sweep(v)
				if got := len(f.tab.probes); got != k {
					b.Fatalf("sweep found %d expired, want %d", got, k)
				}
				left -= k
				f.tab.events = f.tab.events[:0]
				f.tab.probes = f.tab.probes[:0]
			}
		})
	}
}

// BenchmarkOnBeat is the monitor's whole per-beat work on the subscription
// goroutine, as the ingest benchmark drives it: the real clock, the
// subject, the strict decode, the lock and the table, for n known peers
// beating round-robin. Each beat's seq is bumped in place (its digits have
// a fixed width), which costs a few ns of the figure. The beats announce a
// 1ms interval so that, without sender timestamps to tell them apart,
// beats of one peer n messages apart are not a flood.
func BenchmarkOnBeat(b *testing.B) {
	for _, c := range []struct{ n, batch int }{{10_000, 1}, {100_000, 1}, {10_000, beatBatch}, {100_000, beatBatch}} {
		n, batch := c.n, c.batch
		name := fmt.Sprintf("peers=%d", n)
		if batch > 1 {
			// As the monitor takes beats when they queue faster than it
			// judges them: a batch at a time, one clock reading each.
			name += fmt.Sprintf("/batch=%d", batch)
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.MaxPeers = n
			cfg.MinInterval = time.Millisecond
			m, err := New(&nats.Conn{}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			msgs := make([]*nats.Msg, n)
			seqAt := make([]int, n)
			for i := range msgs {
				id := "ingest-" + strconv.Itoa(i)
				beat := wire.Beat{V: wire.Version, ID: id, Host: "bench-host.example.com", PID: 4242,
					Boot: "0123456789abcdef", Seq: 100_000_000_000, TS: time.Now().UTC(), IntervalMS: 1,
					Status: wire.StatusAlive, Version: "v0.0.0-bench"}
				data := wire.AppendBeat(nil, &beat)
				seqAt[i] = bytes.Index(data, []byte(`"seq":`)) + len(`"seq":`)
				msgs[i] = &nats.Msg{Subject: m.subj.Beat(id), Data: data}
			}
			bump := func(i int) {
				d := msgs[i].Data[seqAt[i] : seqAt[i]+12]
				for j := len(d) - 1; j >= 0; j-- {
					if d[j] < '9' {
						d[j]++
						return
					}
					d[j] = '0'
				}
			}
			for range 2 { // known and promoted, as in a running monitor
				for i := range msgs {
					bump(i)
					m.onBeats(msgs[i : i+1])
				}
			}
			before := m.tab.st.beats
			next, first := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				bump(next)
				if next++; next-first == batch || next == n {
					m.onBeats(msgs[first:next])
					first = next
				}
				if next == n {
					next, first = 0, 0
				}
			}
			m.onBeats(msgs[first:next])
			if got := m.tab.st.beats - before; got != uint64(b.N) {
				b.Fatalf("%d of %d beats accepted; rejected %v", got, b.N, m.Stats().Rejected)
			}
		})
	}
}

// BenchmarkPeers is one Peers snapshot: what each dashboard refresh,
// unlimited API call or whole-table status request costs the monitor.
// locked-ns/op is the part that holds the monitor's lock (beats wait
// meanwhile); the rest of ns/op is parsing the peers' labels after it is
// let go, so ns/op is what the lock would be held for if they were parsed
// under it. labels=2 gives every peer two labels, as a fleet tagged by
// role and zone has.
func BenchmarkPeers(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, labels := range []int{0, 2} {
			b.Run(fmt.Sprintf("peers=%d/labels=%d", n, labels), func(b *testing.B) {
				f := newBenchFleet(b, n)
				if labels > 0 {
					for i := range f.raws {
						f.raws[i].Labels = []byte(`{"az":"eu-west-1` + string(rune('a'+i%3)) + `","role":"web"}`)
					}
					for range n {
						f.beat()
					}
				}
				m := f.monitor()
				var locked time.Duration
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					ps := m.peersLocked()
					locked += time.Since(start)
					parseLabels(ps)
					if len(ps) != n || len(ps[0].Labels) != labels {
						b.Fatalf("%d peers with %d labels, want %d with %d", len(ps), len(ps[0].Labels), n, labels)
					}
				}
				b.ReportMetric(float64(locked.Nanoseconds())/float64(b.N), "locked-ns/op")
			})
		}
	}
}

// BenchmarkTopPeers is one TopPeers call for the first 500 peers in list
// order (the dashboard's page above 1,000 peers), next to BenchmarkPeers:
// the lock is held for one pass over the table plus 500 snapshots
// (locked-ns/op), and the 500 are sorted after it is let go (the rest of
// ns/op). The pass does more work the
// more peers come before the 500 kept so far, so it depends on the order
// in which the table hands out its peers (by recency of their beats)
// relative to list order: "shuffled" is a fleet whose beats arrive in no
// particular id order, "ascending" the best case (one comparison a
// peer), "descending" the worst (every peer is kept for a while). With
// ids that share a long prefix, keys leave the prefix out.
func BenchmarkTopPeers(b *testing.B) {
	const limit = 500
	for _, n := range []int{10_000, 100_000} {
		for _, c := range []struct{ prefix, order string }{
			{"node-", "shuffled"},
			{"node-", "ascending"},
			{"node-", "descending"},
			{"prod-eu-west-1-web-", "shuffled"},
		} {
			b.Run(fmt.Sprintf("peers=%d/limit=%d/ids=%sN/order=%s", n, limit, c.prefix, c.order), func(b *testing.B) {
				ids := make([]string, n)
				for i := range ids {
					ids[i] = c.prefix + strconv.Itoa(i)
				}
				switch c.order {
				case "shuffled":
					rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
				case "descending":
					slices.Reverse(ids)
				}
				f := newBenchFleetOf(b, ids)
				m := f.monitor()
				var locked time.Duration
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					kept, pl, matched := m.topLocked(limit, newStateSet(nil))
					locked += time.Since(start)
					if top := sortTop(kept, pl); len(top) != limit || matched != n {
						b.Fatalf("%d peers of %d, want %d of %d", len(top), matched, limit, n)
					}
				}
				b.ReportMetric(float64(locked.Nanoseconds())/float64(b.N), "locked-ns/op")
			})
		}
	}
}

// BenchmarkGC is one forced garbage collection with a table of n peers
// alive (peers=0: none), the marking a table adds to every cycle
// (docs/PERFORMANCE.md, Ingest).
func BenchmarkGC(b *testing.B) {
	for _, n := range []int{0, 10_000, 100_000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			var f *benchFleet
			if n > 0 {
				f = newBenchFleet(b, n)
			}
			runtime.GC()
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(f)
		})
	}
}

// BenchmarkTopPeersDead is what every scrape of /metrics (the dead-peer
// series) and every re-post of the Alertmanager sink ask of the monitor:
// the first 1000 dead peers of a table of n, none of them dead. locked-ns/op
// is the time beats wait meanwhile.
func BenchmarkTopPeersDead(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = "node-" + strconv.Itoa(i)
			}
			m := newBenchFleetOf(b, ids).monitor()
			dead := newStateSet([]State{StateDead})
			var locked time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				kept, _, matched := m.topLocked(1000, dead)
				locked += time.Since(start)
				if len(kept) != 0 || matched != 0 {
					b.Fatalf("%d dead peers kept of %d", len(kept), matched)
				}
			}
			b.ReportMetric(float64(locked.Nanoseconds())/float64(b.N), "locked-ns/op")
		})
	}
}
