package monitor_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func beat(id, boot string, seq uint64) *wire.Beat {
	return &wire.Beat{V: 1, ID: id, Host: id + ".example", PID: 1, Boot: boot, Seq: seq,
		TS: time.Now(), IntervalMS: fast.Milliseconds(), Status: wire.StatusAlive, Version: "t"}
}

func publishBeat(t *testing.T, nc *nats.Conn, b *wire.Beat) {
	t.Helper()
	if err := nc.Publish(wire.MustSubjects("hb").Beat(b.ID), wire.AppendBeat(nil, b)); err != nil {
		t.Fatal(err)
	}
}

// TestHostileInput throws every kind of bad beat at a monitor that is also
// watching a real node, and checks each is counted under its reason while
// the real node is still judged correctly.
func TestHostileInput(t *testing.T) {
	srv := natstest.Start(t)
	m, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), func(c *monitor.Config) { c.MaxPeers = 500 })
	// The healthy node beats every 500ms: the floods below load both cores
	// (under -race) and may delay its beats upstream of the monitor, which
	// no monitor can see; this test is about what hostile input does to
	// the monitor, not about that delay.
	_, ncGood, _ := startNode(t, srv.ClientURL(), "good", func(c *node.Config) { c.Interval = 500 * time.Millisecond })
	rec.waitState(t, "good", monitor.StateAlive)
	// A second beat makes "good" an established peer (out of probation),
	// which a flood of one-beat ids must not push out of the table.
	natstest.Eventually(t, "good established", func() bool { p, ok := m.Peer("good"); return ok && p.Seq >= 2 })
	evil := natstest.Connect(t, srv.ClientURL())
	subj := wire.MustSubjects("hb")
	raw := func(id, payload string) func() {
		return func() {
			if err := evil.Publish(subj.Beat(id), []byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
	}
	valid := func(id string, mut func(*wire.Beat)) func() {
		return func() {
			b := beat(id, "evil-boot", 1)
			mut(b)
			raw(id, string(wire.AppendBeat(nil, b)))()
		}
	}
	tests := []struct {
		name   string
		send   func()
		reason string
	}{
		{"malformed JSON", raw("x", `{"v":1,`), "malformed"},
		{"wrong types", raw("x", `{"v":"1","id":"x","boot":"b","seq":1,"interval_ms":100,"status":"alive"}`), "type"},
		{"huge number", raw("x", `{"v":1,"id":"x","boot":"b","seq":99999999999999999999999,"interval_ms":100,"status":"alive"}`), "range"},
		{"negative interval", raw("x", `{"v":1,"id":"x","boot":"b","seq":1,"interval_ms":-100,"status":"alive"}`), "range"},
		{"absurd interval", valid("x", func(b *wire.Beat) { b.IntervalMS = 365 * 24 * 3600 * 1000 }), "interval"},
		{"tiny interval", valid("x", func(b *wire.Beat) { b.IntervalMS = 1 }), "interval"},
		{"invalid UTF-8", raw("x", "{\"v\":1,\"id\":\"x\",\"host\":\"\xc3\x28\",\"boot\":\"b\",\"seq\":1,\"interval_ms\":100,\"status\":\"alive\"}"), "utf8"},
		{"id mismatch (spoof)", valid("x", func(b *wire.Beat) { b.ID = "good" }), "id_mismatch"},
		{"oversize", raw("x", `{"v":1,"pad":"`+strings.Repeat("x", 4096)+`"}`), "oversize"},
		{"replay of good", func() {
			// A captured beat of "good" sent again: seq goes backwards.
			b := beat("good", "", 1)
			p, _ := m.Peer("good")
			b.Boot, b.Host, b.Seq = p.Boot, p.Host, 1
			publishBeat(t, evil, b)
		}, "replay"},
		{"bad subject id", raw("bad\x01id", `{}`), "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := m.Stats().Rejected[tt.reason]
			tt.send()
			natstest.Eventually(t, "rejection counted as "+tt.reason, func() bool { return m.Stats().Rejected[tt.reason] > before })
		})
	}
	t.Run("flood from one id", func(t *testing.T) {
		before := m.Stats().Rejected["flood"]
		for i := range 2000 {
			publishBeat(t, evil, beat("flooder", "fb", uint64(i+1)))
		}
		natstest.Eventually(t, "flood counted", func() bool { return m.Stats().Rejected["flood"] >= before+1900 })
	})
	t.Run("boot flip-flop is a conflict", func(t *testing.T) {
		for i := range 10 {
			publishBeat(t, evil, beat("twin", "boot-a", uint64(i+1)))
			publishBeat(t, evil, beat("twin", "boot-b", uint64(i+1)))
			if err := evil.Flush(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(fast / 5) // pace the pair so the flood rule does not apply
		}
		rec.wait(t, "conflict", func(e monitor.Event) bool { return e.ID == "twin" && e.Conflict })
		restarts := 0
		for _, e := range rec.all() {
			if e.ID == "twin" && e.Restart {
				restarts++
			}
		}
		if restarts > 1 {
			t.Errorf("flip-flop produced %d restart events, want at most 1", restarts)
		}
	})
	t.Run("flood of unique ids stays within MaxPeers", func(t *testing.T) {
		// In chunks the beat queue (4096 slots here) can hold, each taken
		// in before the next is sent: on a fast machine 5000 at once can
		// overflow it, and beats NATS drops never reach the table.
		before := m.Stats().Beats
		for chunk := range 5 {
			for i := chunk * 1000; i < (chunk+1)*1000; i++ {
				publishBeat(t, evil, beat("u"+strconv.Itoa(i), "b", 1))
			}
			want := before + uint64(chunk+1)*1000
			natstest.Eventually(t, "flood chunk taken in", func() bool { return m.Stats().Beats >= want })
		}
		natstest.Eventually(t, "evictions", func() bool { return m.Stats().Evicted >= 4000 })
		if n := len(m.Peers()); n > 500 {
			t.Fatalf("table holds %d peers, MaxPeers is 500", n)
		}
	})
	// Through all of that, the real node was judged correctly: alive, and
	// dead once it really goes away.
	for _, e := range rec.all() {
		if e.ID == "good" && (e.State == monitor.StateDead || e.State == monitor.StateSuspect) {
			t.Fatalf("hostile traffic caused a false verdict on a healthy node: %s; stats %+v", e.String(), m.Stats())
		}
	}
	ncGood.Close()
	rec.waitState(t, "good", monitor.StateDead)
}
