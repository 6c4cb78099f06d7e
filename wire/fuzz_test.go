package wire_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hbmesh/hbmesh/wire"
)

// Seeds live in testdata/fuzz/<FuzzName>; these add the canonical shapes.
func addBeatSeeds(f *testing.F) {
	b := sampleBeat()
	f.Add(wire.AppendBeat(nil, &b))
	f.Add([]byte(`{"v":1,"id":"a","boot":"b","seq":1,"interval_ms":1,"status":"leaving"}`))
	f.Add([]byte(`{"v":1,"id":"a\u00e9","boot":"\ud83d\ude00","seq":1,"interval_ms":1,"status":"alive","x":[{"y":null}]}`))
	f.Add([]byte(`{"v":1,"id":"a","id":"b"}`))
	f.Add([]byte("{\"v\":1,\"host\":\"\xff\"}"))
}

// checkDecoded is the property every accepted payload must have: it is
// valid JSON, and re-encoding the decoded beat decodes to the same beat,
// its ts cut to AppendBeat's milliseconds.
func checkDecoded(t *testing.T, data []byte, b wire.Beat) {
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatalf("accepted payload that encoding/json rejects: %v\n%q", err, data)
	}
	if wire.ValidateID(b.ID) != nil || !utf8.ValidString(b.Host) || b.Seq == 0 || b.IntervalMS <= 0 {
		t.Fatalf("accepted beat breaks an invariant: %+v", b)
	}
	again, err := wire.DecodeBeat(wire.AppendBeat(nil, &b))
	if err != nil {
		t.Fatalf("re-encoded beat rejected: %v\n%+v", err, b)
	}
	ms, err := time.Parse(time.RFC3339Nano, b.TS.Format(wire.TSLayout))
	if err != nil {
		t.Fatalf("ts %v in TSLayout does not parse: %v", b.TS, err)
	}
	if ms.After(b.TS) || b.TS.Sub(ms) >= time.Millisecond {
		t.Fatalf("ts %v in TSLayout is %v, not cut to the millisecond", b.TS, ms)
	}
	b.TS = ms
	x, _ := json.Marshal(again)
	y, _ := json.Marshal(b)
	if string(x) != string(y) {
		t.Fatalf("round trip differs:\n%s\n%s", x, y)
	}
}

func FuzzDecodeBeat(f *testing.F) {
	addBeatSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := wire.DecodeBeat(data)
		if err != nil {
			if _, ok := err.(*wire.DecodeError); !ok {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			return
		}
		checkDecoded(t, data, b)
	})
}

func FuzzDecodeProbeReply(f *testing.F) {
	addBeatSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := wire.DecodeProbeReply(data)
		if err != nil {
			return
		}
		checkDecoded(t, data, b)
	})
}

func FuzzParseSubject(f *testing.F) {
	s := wire.MustSubjects("hb")
	for _, seed := range []string{"hb.web-1", "hb.web-1.probe", "hb.events.dead.x", "hb.", "hb.*", "hb.a\x00", "hb.\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, subj string) {
		if id, err := s.ParseBeat(subj); err == nil {
			if wire.ValidateID(id) != nil {
				t.Fatalf("ParseBeat(%q) returned invalid id %q", subj, id)
			}
			if s.Beat(id) != subj {
				t.Fatalf("Beat(ParseBeat(%q)) = %q", subj, s.Beat(id))
			}
		}
		if id, err := s.ParseProbe(subj); err == nil {
			if s.Probe(id) != subj {
				t.Fatalf("Probe(ParseProbe(%q)) = %q", subj, s.Probe(id))
			}
			if _, err := s.ParseBeat(subj); err == nil {
				t.Fatalf("%q parses as both beat and probe", subj)
			}
		}
		if err := wire.ValidateID(subj); err == nil {
			if got := wire.IDFromHostname(subj); wire.ValidateID(got) != nil {
				t.Fatalf("IDFromHostname(%q) = %q is invalid", subj, got)
			}
		}
		if got := wire.IDFromHostname(subj); wire.ValidateID(got) != nil {
			t.Fatalf("IDFromHostname(%q) = %q is invalid", subj, got)
		}
	})
}

func FuzzBeatIDAgreesWithParseBeat(f *testing.F) {
	for _, seed := range []string{"hb.web-1", "hb.a.b", "hb.", "x.y", "hb.\x01"} {
		f.Add(seed)
	}
	s := wire.MustSubjects("hb")
	f.Fuzz(func(t *testing.T, subj string) {
		fast, ok := s.BeatID(subj)
		full, err := s.ParseBeat(subj)
		if err == nil && (!ok || fast != full) {
			t.Fatalf("ParseBeat(%q) = %q but BeatID = %q, %v", subj, full, fast, ok)
		}
	})
}

// FuzzParseLabels checks ParseLabels against encoding/json, the
// definition it documents, for any bytes: the decoder's scanner reads
// what it accepts, and must read it as encoding/json does (escapes,
// surrogate pairs, whitespace, an empty object as an empty map); all
// else goes to encoding/json itself.
func FuzzParseLabels(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"role":"web","az":"eu-1a"}`, `{"a":"\u00e9\ud83d\ude00\n\"\\\/"}`,
		`{"a":"1","a":"2"}`, `{"k=v":"x"}`, `{"a":"\ud800"}`, `{"a":1}`, `null`, `{"a":"b"} x`,
		"{\"a\":\"\xff\"}", `{"a":"b",}`, `{"` + strings.Repeat("x", 40) + `":"v"}`, `{"a":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want map[string]string
		if len(raw) == 0 || json.Unmarshal(raw, &want) != nil {
			want = nil
		}
		if got := wire.ParseLabels(raw); !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseLabels(%q) = %#v, encoding/json reads %#v", raw, got, want)
		}
	})
}
