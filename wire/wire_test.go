package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

func sampleBeat() wire.Beat {
	return wire.Beat{
		V: 1, ID: "web-1_example_com", Host: "web-1.example.com", PID: 4242,
		Boot: "01JD4Z8K6Q3W2V", Seq: 17, TS: time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC),
		IntervalMS: 1000, Status: wire.StatusAlive, Version: "v0.1.0",
		Labels: map[string]string{"az": "eu-1a", "role": "web"},
	}
}

func TestBeatRoundTrip(t *testing.T) {
	b := sampleBeat()
	enc := wire.AppendBeat(nil, &b)
	if len(enc) > 256 {
		t.Errorf("typical beat is %d bytes, want <= 256: %s", len(enc), enc)
	}
	var generic map[string]any
	if err := json.Unmarshal(enc, &generic); err != nil {
		t.Fatalf("encoding is not JSON: %v\n%s", err, enc)
	}
	for _, k := range []string{"v", "id", "host", "pid", "boot", "seq", "ts", "interval_ms", "status", "version", "labels"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("key %q missing from %s", k, enc)
		}
	}
	got, err := wire.DecodeBeat(enc)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if want := b.TS.Truncate(time.Millisecond); !got.TS.Equal(want) {
		t.Errorf("ts = %v, want %v (milliseconds)", got.TS, want)
	}
	got.TS = b.TS
	gj, _ := json.Marshal(got)
	bj, _ := json.Marshal(b)
	if string(gj) != string(bj) {
		t.Errorf("round trip changed the beat:\n got %s\nwant %s", gj, bj)
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := `"v":1,"id":"a","host":"h","pid":1,"boot":"b","seq":1,"ts":"2026-01-02T03:04:05Z","interval_ms":1000,"status":"alive"`
	tests := []struct {
		name   string
		in     string
		reason wire.Reason
	}{
		{"empty", ``, wire.ReasonMalformed},
		{"not object", `[1]`, wire.ReasonMalformed},
		{"truncated", `{"v":1,"id":"a"`, wire.ReasonMalformed},
		{"trailing", `{` + valid + `}x`, wire.ReasonMalformed},
		{"missing seq", `{"v":1,"id":"a","boot":"b","interval_ms":1,"status":"alive"}`, wire.ReasonMissing},
		{"wrong type seq", `{"v":1,"id":"a","boot":"b","seq":"1","interval_ms":1,"status":"alive"}`, wire.ReasonType},
		{"wrong type id", `{"v":1,"id":7,"boot":"b","seq":1,"interval_ms":1,"status":"alive"}`, wire.ReasonType},
		{"float seq", `{"v":1,"id":"a","boot":"b","seq":1.5,"interval_ms":1,"status":"alive"}`, wire.ReasonType},
		{"huge seq", `{"v":1,"id":"a","boot":"b","seq":184467440737095516150,"interval_ms":1,"status":"alive"}`, wire.ReasonRange},
		{"huge interval", `{"v":1,"id":"a","boot":"b","seq":1,"interval_ms":99999999999999999999,"status":"alive"}`, wire.ReasonRange},
		{"negative interval", `{"v":1,"id":"a","boot":"b","seq":1,"interval_ms":-5,"status":"alive"}`, wire.ReasonRange},
		{"zero seq", `{"v":1,"id":"a","boot":"b","seq":0,"interval_ms":1,"status":"alive"}`, wire.ReasonRange},
		{"version 2", `{"v":2,"id":"a","boot":"b","seq":1,"interval_ms":1,"status":"alive"}`, wire.ReasonVersion},
		{"bad status", `{"v":1,"id":"a","boot":"b","seq":1,"interval_ms":1,"status":"zombie"}`, wire.ReasonStatus},
		{"dotted id", `{"v":1,"id":"a.b","boot":"b","seq":1,"interval_ms":1,"status":"alive"}`, wire.ReasonID},
		{"invisible id", `{"v":1,"id":"web-1\u200b","boot":"b","seq":1,"interval_ms":1,"status":"alive"}`, wire.ReasonID},
		{"invisible id raw", "{\"v\":1,\"id\":\"web-1\u200b\",\"boot\":\"b\",\"seq\":1,\"interval_ms\":1,\"status\":\"alive\"}", wire.ReasonID},
		{"duplicate id", `{"v":1,"id":"a","id":"b","boot":"b","seq":1,"interval_ms":1,"status":"alive"}`, wire.ReasonDuplicate},
		{"invalid utf8", "{\"v\":1,\"id\":\"a\",\"host\":\"\xff\xfe\",\"boot\":\"b\",\"seq\":1,\"interval_ms\":1,\"status\":\"alive\"}", wire.ReasonUTF8},
		{"lone surrogate", `{"v":1,"id":"a","host":"\ud800","boot":"b","seq":1,"interval_ms":1,"status":"alive"}`, wire.ReasonUTF8},
		{"bad ts", `{` + strings.Replace(valid, "2026-01-02T03:04:05Z", "yesterday", 1) + `}`, wire.ReasonType},
		{"label not string", `{` + valid + `,"labels":{"a":1}}`, wire.ReasonLabels},
		{"label bad key", `{` + valid + `,"labels":{"a b":"x"}}`, wire.ReasonLabels},
		{"oversize", `{` + valid + `,"pad":"` + strings.Repeat("x", wire.MaxPayload) + `"}`, wire.ReasonOversize},
		{"deep nesting", `{` + valid + `,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, wire.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.DecodeBeat([]byte(tt.in))
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if de.Reason != tt.reason {
				t.Errorf("reason = %q, want %q (%v)", de.Reason, tt.reason, err)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	for _, in := range []string{
		`{"v":1,"id":"a","boot":"b","seq":1,"interval_ms":1,"status":"leaving"}`,
		` { "status" : "alive" , "interval_ms" : 5 , "seq" : 9 , "boot" : "x\u00e9" , "id" : "n\u00e9" , "v" : 1 , "future":{"k":[1,2.5e3,true,null,"s"]} } `,
		`{"v":1,"id":"a","boot":"b","seq":18446744073709551615,"interval_ms":1,"status":"alive","ts":"2026-01-02T03:04:05.5+02:00","labels":{}}`,
	} {
		if _, err := wire.DecodeBeat([]byte(in)); err != nil {
			t.Errorf("DecodeBeat(%s) = %v, want ok", in, err)
		}
	}
}

func TestDecodeZeroAlloc(t *testing.T) {
	b := sampleBeat()
	enc := wire.AppendBeat(nil, &b)
	var d wire.Decoder
	var raw wire.RawBeat
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.Decode(enc, &raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %v times per beat, want 0", allocs)
	}
}

func TestValidateID(t *testing.T) {
	long := strings.Repeat("a", wire.MaxIDLen+1)
	tests := []struct {
		id, want string
	}{
		{"web-1", ""},
		{"ünïcode", ""},
		{"", "empty"},
		{"a.b", "'.'"},
		{"a*", "wildcard"},
		{"a>", "wildcard"},
		{"a b", "whitespace"},
		{"a\tb", "whitespace"},
		{"a\x01", "control"},
		{"a\u00a0b", "whitespace"},
		{"web-1\u200b", "invisible formatting character U+200B"},
		{"\u202egnp.exe", "U+202E"},
		{"\u202egnp", "U+202E"},
		{"\ufeffweb-1", "U+FEFF"},
		{"soft\u00adhyphen", "U+00AD"},
		{"日本-1", ""},
		{"\xff", "UTF-8"},
		{long, "longer than"},
	}
	for _, tt := range tests {
		err := wire.ValidateID(tt.id)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateID(%q) = %v, want ok", tt.id, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, wire.ErrInvalidID)):
			t.Errorf("ValidateID(%q) = %v, want an ErrInvalidID naming %q", tt.id, err, tt.want)
		}
	}
}

func TestIDFromHostname(t *testing.T) {
	tests := map[string]string{
		"web-1.example.com": "web-1_example_com",
		"WEB-1":             "web-1",
		"":                  "unknown",
		"a b*c":             "a-b-c",
	}
	for in, want := range tests {
		if got := wire.IDFromHostname(in); got != want {
			t.Errorf("IDFromHostname(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", 100) + ".example.com"
	got := wire.IDFromHostname(long)
	if err := wire.ValidateID(got); err != nil {
		t.Errorf("IDFromHostname(long) = %q is not a valid id: %v", got, err)
	}
	if got != wire.IDFromHostname(long) {
		t.Error("IDFromHostname is not deterministic")
	}
}

func TestSubjectsNeverCollide(t *testing.T) {
	s := wire.MustSubjects("hb")
	if got, err := s.ParseBeat(s.Beat("web-1")); err != nil || got != "web-1" {
		t.Errorf("ParseBeat(Beat) = %q, %v", got, err)
	}
	for _, subj := range []string{
		s.Probe("web-1"), s.Event("dead", "web-1"), s.Control("status"),
		"hb", "hb.", "hbx.web", "other.web", "hb.a.b",
	} {
		if id, err := s.ParseBeat(subj); err == nil {
			t.Errorf("ParseBeat(%q) = %q, want an error: it is not a beat", subj, id)
		}
	}
	if got, err := s.ParseProbe(s.Probe("n1")); err != nil || got != "n1" {
		t.Errorf("ParseProbe = %q, %v", got, err)
	}
	for _, subj := range []string{s.Event("dead", "n1"), s.Control("peers"), s.Beat("n1")} {
		if _, err := s.ParseProbe(subj); err == nil {
			t.Errorf("ParseProbe(%q) accepted a non-probe subject", subj)
		}
	}
	if s.Beats() != "hb.*" || s.All() != "hb.>" {
		t.Errorf("wildcards = %q, %q", s.Beats(), s.All())
	}
	for _, p := range []string{"", "a..b", "a.*", "a b", ".a"} {
		if _, err := wire.NewSubjects(p); !errors.Is(err, wire.ErrInvalidPrefix) {
			t.Errorf("NewSubjects(%q) = %v, want ErrInvalidPrefix", p, err)
		}
	}
	if _, err := wire.NewSubjects("acme.hb"); err != nil {
		t.Errorf("NewSubjects(acme.hb) = %v", err)
	}
}

// TestAppendJSONStringPrintable: event and beat JSON is printed as is by
// `hbmesh monitor --json`, so no string in it may reach a terminal as a
// control: C0, DEL and C1 are escaped, and it still decodes to the same
// text (invalid UTF-8 aside, which becomes U+FFFD).
func TestAppendJSONStringPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web-1", `"web-1"`},
		{"héllo-日本", `"héllo-日本"`},
		{"a\x1b[2J\r\n\t\"\\", `"a\u001b[2J\r\n\t\"\\"`},
		{"del\x7f", `"del\u007f"`},
		{"c1\u0085\u009b31m\u00a0", `"c1\u0085\u009b31m` + "\u00a0" + `"`}, // NEL, CSI; NBSP is no control
		{"ls\u2028ps\u2029", `"ls\u2028ps\u2029"`},
		{"bad\xff", `"bad\ufffd"`},
	} {
		got := string(wire.AppendJSONString(nil, tc.in))
		if got != tc.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != strings.ToValidUTF8(tc.in, "\ufffd") {
			t.Errorf("%s decodes to %q, %v; want %q", got, back, err, tc.in)
		}
	}
}
