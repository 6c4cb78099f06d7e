package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// mixedIDs are ids whose natural order differs from their byte order in
// every way natsort knows: numbers of different lengths (web-2, web-10),
// leading zeros (web-02, web-002), numbers past uint64, nested runs.
func mixedIDs() []string {
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for i := range 250 {
		add("web-" + strconv.Itoa(i))
		add("db-" + strconv.Itoa(i%120))
	}
	for i := range 40 {
		add(fmt.Sprintf("web-%02d", i))
		add(fmt.Sprintf("web-%03d", i))
		add(fmt.Sprintf("web-10-%d", i))
	}
	for _, id := range []string{"9", "10", "010", "a", "A", "web-", "web-2-1", "web-99999999999999999999", "web-100000000000000000000", "z"} {
		add(id)
	}
	return ids
}

// mixedMonitor runs a real monitor, on a real nats-server and a fake
// clock, whose table holds mixedIDs in every state: beats are published
// on NATS as nodes would send them, in a shuffled order, and the clock is
// advanced until the silent peers are suspect or dead. Some peers carry
// labels. It returns the monitor and the fake time its table was left at.
func mixedMonitor(t *testing.T) (*monitor.Monitor, time.Time) {
	t.Helper()
	ns := natstest.Start(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	mcfg := monitor.DefaultConfig()
	mcfg.ID = "mon-top"
	mcfg.Clock = clk
	// The clock jumps a second at a time; those jumps are the test's
	// time passing, not the monitor stalling.
	mcfg.StallThreshold = time.Hour
	mon, err := monitor.New(natstest.Connect(t, ns.ClientURL()), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "monitor", mon.Run)
	natstest.Eventually(t, "monitor ready", func() bool { return mon.Ready() == nil })

	ids := mixedIDs()
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	// By position in the shuffled list: the step of a peer's last beat,
	// and whether it says goodbye then. Steps are a second apart.
	const steps = 6
	last := func(i int) (step int, goodbye bool) {
		switch i % 8 {
		case 0, 1:
			return 0, false // dead by the end
		case 2:
			return steps - 2, false // suspect by the end
		case 3:
			return 1, true // left
		}
		return steps, false // alive
	}
	pub := natstest.Connect(t, ns.ClientURL())
	subj := mon.Subjects()
	var sent uint64
	var buf []byte
	for step := 0; step <= steps; step++ {
		if step > 0 {
			clk.Advance(time.Second)
		}
		for i, id := range ids {
			ls, bye := last(i)
			if step > ls {
				continue
			}
			b := wire.Beat{V: wire.Version, ID: id, Host: "host-" + id, PID: 100 + i, Boot: "boot-" + id,
				Seq: uint64(step + 1), TS: clk.Now(), IntervalMS: 1000, Status: wire.StatusAlive, Version: "v1.2.3"}
			if bye && step == ls {
				b.Status = wire.StatusLeaving
			}
			if i%5 == 0 {
				b.Labels = map[string]string{"zone": "z" + strconv.Itoa(i%3), "rack": "r1"}
			}
			buf = wire.AppendBeat(buf[:0], &b)
			if err := pub.Publish(subj.Beat(id), buf); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		// Every beat is taken at the time it was sent at.
		natstest.Eventually(t, fmt.Sprintf("%d beats of step %d", sent, step), func() bool {
			return mon.Stats().Beats == sent
		})
	}
	clk.Advance(500 * time.Millisecond) // alive peers beat 0.5s ago, suspect ones 2.5s ago
	want := map[monitor.State]int{}
	for i := range ids {
		switch ls, bye := last(i); {
		case bye:
			want[monitor.StateLeft]++
		case ls == 0:
			want[monitor.StateDead]++
		case ls < steps:
			want[monitor.StateSuspect]++
		default:
			want[monitor.StateAlive]++
		}
	}
	natstest.Eventually(t, fmt.Sprintf("peers %v", want), func() bool {
		got := mon.Stats().Peers
		for _, st := range monitor.States() {
			if got[st] != want[st] {
				return false
			}
		}
		return true
	})
	return mon, clk.Now()
}

// TestLimitedPeersAsFromAll: a limited /api/peers answer, which the
// monitor selects (Monitor.TopPeers), is byte for byte the answer built
// from a snapshot of every peer (filter, sort, cut), for
// every state filter and limit, over a real monitor with peers in every
// state.
func TestLimitedPeersAsFromAll(t *testing.T) {
	mon, now := mixedMonitor(t)
	s, err := New(Config{Source: mon, Version: "test", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	n := len(mon.Peers())
	for _, states := range []string{"", "dead", "suspect", "alive", "left", "suspect,dead", "left,alive", "alive,dead,left,suspect", "dead,dead"} {
		for _, limit := range []int{0, 1, 2, 7, 100, 500, n - 1, n, n + 1} {
			query := url.Values{"limit": {strconv.Itoa(limit)}}
			if states != "" {
				query.Set("state", states)
			}
			t.Run(query.Encode(), func(t *testing.T) {
				r := httptest.NewRequest("GET", "/api/peers?"+query.Encode(), nil)
				f, err := parseFilter(r)
				if err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				ps, matched := s.selectFromAll(&f)
				if err := json.NewEncoder(&want).Encode(s.newPeerList(ps, matched, now)); err != nil {
					t.Fatal(err)
				}
				if limit > 0 && len(ps) == 0 && states != "" {
					t.Fatalf("no peers %s: the table does not hold every state", states)
				}
				w := httptest.NewRecorder()
				s.Handler().ServeHTTP(w, r)
				if w.Code != 200 {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				if got := w.Body.String(); got != want.String() {
					t.Errorf("answer differs from the one built from every peer (%d matched, %d rows)\n got %.600s\nwant %.600s",
						matched, len(ps), got, want.String())
				}
			})
		}
	}
	// A search still goes through every peer: only that matches labels.
	r := httptest.NewRequest("GET", "/api/peers?limit=5&q=zone%3Dz1", nil)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	var got PeerList
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Matched == 0 || len(got.Peers) != 5 || got.Peers[0].Labels["zone"] != "z1" || !strings.Contains(w.Body.String(), `"zone":"z1"`) {
		t.Errorf("search for a label: %d matched, %d rows, first %+v", got.Matched, len(got.Peers), got.Peers)
	}
}
