package wire

import (
	"strconv"
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
				!got.TS.Equal(b.TS.Truncate(time.Millisecond)) || got.Status != b.Status || got.Version != b.Version || got.PID != b.PID ||
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

// FuzzDecodeNextAnySender: given any Sender, not only one built from a
// plain beat as DecodeNext asks, it never panics, its answer is Decode's
// whenever the shortcut does not take the payload, and when the shortcut
// does, every field but seq, ts and status is the Sender's, byte for
// byte: a payload can make it repeat a bad Sender but add nothing to it.
func FuzzDecodeNextAnySender(f *testing.F) {
	b := Beat{V: Version, ID: "web-1", Host: "web-1.example.com", PID: 7, Boot: "b00t", Seq: 9,
		TS: time.Date(2026, 2, 28, 23, 59, 59, 5, time.UTC), IntervalMS: 1000, Status: StatusAlive,
		Version: "v1", Labels: map[string]string{"az": "a"}}
	f.Add(AppendBeat(nil, &b), b.ID, b.Host, b.Boot, b.Version, `{"az":"a"}`, b.PID, b.IntervalMS)
	// Senders DecodeNext's doc names: an empty id, a host holding an
	// escape, a pid out of range, labels that break the rules.
	for _, s := range []Sender{
		{ID: "", Host: b.Host, Boot: b.Boot, Version: b.Version, PID: b.PID, IntervalMS: b.IntervalMS},
		{ID: b.ID, Host: `a\u0041`, Boot: b.Boot, Version: b.Version, PID: b.PID, IntervalMS: b.IntervalMS},
		{ID: b.ID, Host: "a\"b\n", Boot: b.Boot, Version: b.Version, PID: 1 << 40, IntervalMS: b.IntervalMS},
		{ID: b.ID, Host: b.Host, Boot: b.Boot, Version: b.Version, Labels: `{"x":1`, PID: b.PID, IntervalMS: b.IntervalMS},
	} {
		data := `{"v":1,"id":"` + s.ID + `","host":"` + s.Host + `","pid":` + strconv.Itoa(s.PID) + `,"boot":"` + s.Boot +
			`","seq":2,"ts":"2026-01-01T00:00:00Z","interval_ms":1000,"status":"alive","version":"` + s.Version + `"`
		if s.Labels != "" {
			data += `,"labels":` + s.Labels
		}
		f.Add([]byte(data+"}"), s.ID, s.Host, s.Boot, s.Version, s.Labels, s.PID, s.IntervalMS)
	}
	f.Fuzz(func(t *testing.T, data []byte, id, host, boot, version, labels string, pid int, interval int64) {
		checkNextAnySender(t, data, &Sender{ID: id, Host: host, Boot: boot, Version: version, Labels: labels, PID: pid, IntervalMS: interval})
	})
}

// checkNextAnySender is FuzzDecodeNextAnySender's property. It reports
// whether the shortcut took data.
func checkNextAnySender(t *testing.T, data []byte, s *Sender) (took bool) {
	t.Helper()
	var d Decoder
	var out, want RawBeat
	err := d.DecodeNext(data, &out, s)
	if len(data) <= MaxPayload {
		var n RawBeat
		took = d.next(data, &n, s)
	}
	if !took {
		werr := d.Decode(data, &want)
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() || err == nil && !sameRaw(&out, &want) {
			t.Fatalf("shortcut not taken, yet DecodeNext(%q) = %v, %+v; Decode gives %v, %+v", data, err, out, werr, want)
		}
		return false
	}
	if err != nil {
		t.Fatalf("shortcut took %q, DecodeNext returned %v", data, err)
	}
	if string(out.ID) != s.ID || string(out.Host) != s.Host || string(out.Boot) != s.Boot ||
		string(out.Version) != s.Version || string(out.Labels) != s.Labels || (out.Labels == nil) != (s.Labels == "") ||
		out.PID != s.PID || out.IntervalMS != s.IntervalMS || out.V != Version || !out.Plain {
		t.Fatalf("shortcut took %q, and out %+v is not the sender %+v", data, out, *s)
	}
	if out.Seq == 0 || out.TS.IsZero() {
		t.Fatalf("shortcut took %q with seq %d, ts %v", data, out.Seq, out.TS)
	}
	return true
}

// TestDecodeNextTrustsSender pins what DecodeNext's doc says of a Sender
// not built from a plain beat: the shortcut takes it at its word.
func TestDecodeNextTrustsSender(t *testing.T) {
	const tail = `,"pid":7,"boot":"b","seq":2,"ts":"2026-01-01T00:00:00Z","interval_ms":1000,"status":"alive","version":"v"}`
	for _, tc := range []struct {
		name, host, data, decoded string
	}{
		{"an escape decodes as the sender's bytes", `a\u0041`, `{"v":1,"id":"a","host":"a\u0041"` + tail, "aA"},
		{"a raw quote is taken", `a"b`, `{"v":1,"id":"a","host":"a"b"` + tail, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Sender{ID: "a", Host: tc.host, Boot: "b", Version: "v", PID: 7, IntervalMS: 1000}
			if !checkNextAnySender(t, []byte(tc.data), &s) {
				t.Fatalf("the shortcut did not take %s", tc.data)
			}
			var d Decoder
			var r RawBeat
			err := d.Decode([]byte(tc.data), &r)
			if tc.decoded == "" && err == nil || tc.decoded != "" && (err != nil || string(r.Host) != tc.decoded) {
				t.Fatalf("Decode(%s) = %v, host %q; want host %q (or an error if empty)", tc.data, err, r.Host, tc.decoded)
			}
		})
	}
}
