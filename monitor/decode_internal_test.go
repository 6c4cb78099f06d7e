package monitor

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/wire"
)

// TestKnownPeerDecode drives beats through the monitor's own beat path
// (subject, decode, table) for a known peer, whose beats are decoded with
// wire.Decoder.DecodeNext against what the table holds for it: a beat
// that repeats the peer's fields is accepted, and every field that
// changes is still seen, or refused, exactly as a full decode would.
func TestKnownPeerDecode(t *testing.T) {
	m, clk := offlineClocked(t)
	seqs := map[string]uint64{}
	// encode gives b the next seq for its id and the time a second on.
	encode := func(b wire.Beat) []byte {
		clk.Advance(time.Second)
		seqs[b.ID]++
		b.V, b.Seq, b.TS, b.IntervalMS = wire.Version, seqs[b.ID], clk.Now(), 1000
		if b.Status == "" {
			b.Status = wire.StatusAlive
		}
		return wire.AppendBeat(nil, &b)
	}
	deliver := func(subjectID string, data []byte) {
		m.onBeats([]*nats.Msg{{Subject: m.subj.Beat(subjectID), Data: data}})
	}
	send := func(b wire.Beat) { deliver(b.ID, encode(b)) }
	peer := func(id string) PeerInfo {
		t.Helper()
		p, ok := m.Peer(id)
		if !ok {
			t.Fatalf("%s is not in the table", id)
		}
		return p
	}
	rejected := func(reason string) uint64 { return m.Stats().Rejected[reason] }
	plain := func(id string) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		p, _ := m.tab.peers.peek(id)
		return p.plain
	}

	a := wire.Beat{ID: "a", Host: "a.example", PID: 10, Boot: "boot-1", Version: "v1"}
	send(a)
	send(a)
	if p := peer("a"); p.Seq != 2 || p.State != StateAlive || !plain("a") {
		t.Fatalf("after two beats: %+v, plain %v", p, plain("a"))
	}

	// Changed fields a beat may change are taken up.
	a.Version, a.PID, a.Labels = "v2", 11, map[string]string{"az": "eu-1a"}
	send(a)
	if p := peer("a"); p.Seq != 3 || p.Version != "v2" || p.PID != 11 || p.Labels["az"] != "eu-1a" {
		t.Fatalf("changed fields not taken up: %+v", p)
	}
	send(a) // and then repeat, labels included
	if p := peer("a"); p.Seq != 4 || p.Labels["az"] != "eu-1a" {
		t.Fatalf("repeat of the new fields: %+v", p)
	}

	// A host the peer did not have is refused, whatever path decoded it.
	spoof := a
	spoof.Host = "elsewhere.example"
	send(spoof)
	if got := rejected(rejHostMismatch); got != 1 {
		t.Fatalf("host_mismatch = %d, want 1", got)
	}
	// A payload naming another id on a's subject is refused.
	other := a
	other.ID = "b"
	deliver("a", encode(other))
	if got := rejected(rejIDMismatch); got != 1 {
		t.Fatalf("id_mismatch = %d, want 1", got)
	}
	// A payload that starts as a's would, then breaks: malformed.
	good := encode(a)
	deliver("a", good[:len(good)-1])
	if got := rejected(string(wire.ReasonMalformed)); got != 1 {
		t.Fatalf("malformed = %d, want 1; rejected %v", got, m.Stats().Rejected)
	}

	// A restart (new boot) is still a restart.
	a.Boot = "boot-2"
	send(a)
	if p := peer("a"); p.Boot != "boot-2" || m.Stats().Restarts != 1 {
		t.Fatalf("restart not seen: %+v", p)
	}
	// Goodbye.
	a.Status = wire.StatusLeaving
	send(a)
	if p := peer("a"); p.State != StateLeft {
		t.Fatalf("goodbye not seen: %+v", p)
	}

	// A peer whose host needs escaping in JSON never takes the shortcut,
	// and its beats are still accepted.
	q := wire.Beat{ID: "q", Host: `q"uoted`, PID: 1, Boot: "b", Version: "v"}
	send(q)
	send(q)
	if p := peer("q"); p.Seq != 2 || p.Host != `q"uoted` || plain("q") {
		t.Fatalf("escaped host: %+v, plain %v", p, plain("q"))
	}
	if st := m.Stats(); st.Beats != 8 {
		t.Fatalf("%d beats accepted, want 8; rejected %v", st.Beats, st.Rejected)
	}
}
