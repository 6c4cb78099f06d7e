package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// benchBeat is a typical beat: every field set, two labels.
func benchBeat() []byte {
	b := wire.Beat{
		V: wire.Version, ID: "web-1_example_com", Host: "web-1.example.com", PID: 48213,
		Boot: "9f86d081884c7d65", Seq: 123456, TS: time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC),
		IntervalMS: 1000, Status: wire.StatusAlive, Version: "v1.4.2",
		Labels: map[string]string{"az": "eu-west-1a", "role": "web"},
	}
	return wire.AppendBeat(nil, &b)
}

// BenchmarkDecodeBeat is the monitor's per-beat parse: one reused Decoder,
// no allocations.
func BenchmarkDecodeBeat(b *testing.B) { benchDecode(b, benchBeat()) }

func benchDecode(b *testing.B, data []byte) {
	var d wire.Decoder
	var raw wire.RawBeat
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(data, &raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBeatGeneral decodes the same beat with its keys in
// another order (as a non-Go node might send it), which the fast path
// gives up on: the general path's cost plus that of the attempt.
func BenchmarkDecodeBeatGeneral(b *testing.B) {
	beat, err := wire.DecodeBeat(benchBeat())
	if err != nil {
		b.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{
		"v": beat.V, "id": beat.ID, "host": beat.Host, "pid": beat.PID, "boot": beat.Boot, "seq": beat.Seq,
		"ts": beat.TS, "interval_ms": beat.IntervalMS, "status": beat.Status, "version": beat.Version, "labels": beat.Labels,
	}) // map keys marshal sorted: boot, host, id, ...
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, data)
}

// BenchmarkAppendBeat is the publisher's per-beat encode into a reused
// buffer.
func BenchmarkAppendBeat(b *testing.B) {
	beat := wire.Beat{
		V: wire.Version, ID: "web-1_example_com", Host: "web-1.example.com", PID: 48213,
		Boot: "9f86d081884c7d65", Seq: 1, TS: time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC),
		IntervalMS: 1000, Status: wire.StatusAlive, Version: "v1.4.2",
	}
	buf := make([]byte, 0, wire.MaxPayload)
	b.ReportAllocs()
	for b.Loop() {
		beat.Seq++
		buf = wire.AppendBeat(buf[:0], &beat)
	}
}

// BenchmarkParseBeatSubject is the monitor's per-beat subject check.
func BenchmarkParseBeatSubject(b *testing.B) {
	s := wire.MustSubjects(wire.DefaultPrefix)
	subj := s.Beat("web-1_example_com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ParseBeat(subj); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeNext is the same beat through DecodeNext, given the
// sender's previous beat: the shortcut the monitor takes for a known peer.
func BenchmarkDecodeNext(b *testing.B) {
	data := benchBeat()
	var d wire.Decoder
	var raw wire.RawBeat
	if err := d.Decode(data, &raw); err != nil {
		b.Fatal(err)
	}
	s := wire.Sender{ID: string(raw.ID), Host: string(raw.Host), Boot: string(raw.Boot), Version: string(raw.Version), Labels: string(raw.Labels), PID: raw.PID, IntervalMS: raw.IntervalMS}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeNext(data, &raw, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseLabels reads a stored labels object into a map, as every
// snapshot of a labelled peer does (monitor.Peers and the API above it),
// next to encoding/json, the general reader it falls back to.
func BenchmarkParseLabels(b *testing.B) {
	raw := []byte(`{"az":"eu-west-1a","role":"web"}`)
	b.Run("ParseLabels", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m := wire.ParseLabels(raw); len(m) != 2 {
				b.Fatal(m)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]string
			if err := json.Unmarshal(raw, &m); err != nil || len(m) != 2 {
				b.Fatal(m, err)
			}
		}
	})
}
