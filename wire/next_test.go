package wire

import (
	"testing"
	"time"
)

// senderOf is what a monitor keeps of an accepted beat.
func senderOf(r *RawBeat) Sender {
	return Sender{ID: string(r.ID), Host: string(r.Host), Boot: string(r.Boot), Version: string(r.Version),
		Labels: string(r.Labels), PID: r.PID, IntervalMS: r.IntervalMS}
}

// checkNextAgrees decodes prev, and if the result could be handed to
// DecodeNext, fails if the shortcut accepts data and the general path does
// not, or decodes it differently. It reports whether the shortcut took it.
func checkNextAgrees(t *testing.T, prev, data []byte) (took bool) {
	t.Helper()
	var d Decoder
	var p RawBeat
	if d.Decode(prev, &p) != nil || !p.Plain {
		return false
	}
	s := senderOf(&p)
	var n RawBeat
	if len(data) > MaxPayload || !d.next(data, &n, &s) {
		return false
	}
	g, err := general(data)
	if err != nil {
		t.Fatalf("shortcut accepted %q after %q, general path refused it: %v", data, prev, err)
	}
	if !sameRaw(&n, &g) {
		t.Fatalf("shortcut and general path disagree on %q:\nshortcut %+v\ngeneral  %+v", data, n, g)
	}
	var f RawBeat
	if !d.fast(data, &f) || !sameRaw(&n, &f) || !f.Plain || !n.Plain {
		t.Fatalf("shortcut took %q, which the fast path decodes otherwise or not at all", data)
	}
	return true
}

func FuzzDecodeNextAgrees(f *testing.F) {
	b := Beat{V: Version, ID: "web-1", Host: "web-1.example.com", PID: 7, Boot: "b00t", Seq: 9,
		TS: time.Date(2026, 2, 28, 23, 59, 59, 5, time.UTC), IntervalMS: 1000, Status: StatusAlive,
		Version: "v1", Labels: map[string]string{"az": "a", "r\u00e9le": "x\"y"}}
	prev := AppendBeat(nil, &b)
	b.Seq, b.TS, b.Status = 10, b.TS.Add(time.Second), StatusLeaving
	f.Add(prev, AppendBeat(nil, &b))
	b.Labels = nil
	prev = AppendBeat(nil, &b)
	b.Seq++
	f.Add(prev, AppendBeat(nil, &b))
	f.Fuzz(func(t *testing.T, prev, data []byte) { checkNextAgrees(t, prev, data) })
}

// TestDecodeNextShortcut pins when DecodeNext takes its shortcut: for the
// sender's next beat as AppendBeat writes it, whatever its seq, ts and
// status, and never when anything else changed.
func TestDecodeNextShortcut(t *testing.T) {
	base := Beat{V: Version, ID: "web-1", Host: "web-1.example.com", PID: 4242, Boot: "9f86d081",
		Seq: 41, TS: time.Date(2026, 11, 25, 14, 0, 0, 123456789, time.UTC), IntervalMS: 1000,
		Status: StatusAlive, Version: "v1.2.3", Labels: map[string]string{"az": "eu-1a", "q": `a"b`}}
	prev := AppendBeat(nil, &base)
	cases := []struct {
		name string
		edit func(b *Beat)
		took bool
	}{
		{"next beat", func(*Beat) {}, true},
		{"leaving", func(b *Beat) { b.Status = StatusLeaving }, true},
		{"seq jumps", func(b *Beat) { b.Seq = 1 << 40 }, true},
		{"zoned ts", func(b *Beat) { b.TS = b.TS.In(time.FixedZone("x", 3600)) }, true},
		{"host", func(b *Beat) { b.Host = "web-2.example.com" }, false},
		{"boot", func(b *Beat) { b.Boot = "9f86d082" }, false},
		{"pid", func(b *Beat) { b.PID = 4243 }, false},
		{"interval", func(b *Beat) { b.IntervalMS = 2000 }, false},
		{"version", func(b *Beat) { b.Version = "v1.2.4" }, false},
		{"label value", func(b *Beat) { b.Labels = map[string]string{"az": "eu-1b", "q": `a"b`} }, false},
		{"labels gone", func(b *Beat) { b.Labels = nil }, false},
		{"id", func(b *Beat) { b.ID = "web-2" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := base
			b.Seq++
			b.TS = b.TS.Add(time.Second)
			c.edit(&b)
			data := AppendBeat(nil, &b)
			if got := checkNextAgrees(t, prev, data); got != c.took {
				t.Fatalf("shortcut took it: %v, want %v (%s)", got, c.took, data)
			}
			// Taken or not, DecodeNext's answer is Decode's.
			var d Decoder
			var p, r RawBeat
			if err := d.Decode(prev, &p); err != nil {
				t.Fatal(err)
			}
			s := senderOf(&p)
			if err := d.DecodeNext(data, &r, &s); err != nil {
				t.Fatalf("DecodeNext: %v", err)
			}
			if got := r.Beat(); got.ID != b.ID || got.Host != b.Host || got.Boot != b.Boot || got.Seq != b.Seq ||
				!got.TS.Equal(b.TS) || got.Status != b.Status || got.Version != b.Version || got.PID != b.PID ||
				got.IntervalMS != b.IntervalMS || len(got.Labels) != len(b.Labels) {
				t.Fatalf("decoded %+v, want %+v", got, b)
			}
		})
	}
	// Whatever the sender, a bad payload gets Decode's error.
	var d Decoder
	var p, r RawBeat
	if err := d.Decode(prev, &p); err != nil {
		t.Fatal(err)
	}
	s := senderOf(&p)
	bad := append([]byte(nil), prev...)
	bad = append(bad[:len(bad)-1], ',', '}')
	err := d.DecodeNext(bad, &r, &s)
	want := d.Decode(bad, &r)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("DecodeNext(%s) = %v, Decode gives %v", bad, err, want)
	}
}
