package wire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// general decodes with the general path only.
func general(data []byte) (RawBeat, error) {
	var d Decoder
	var r RawBeat
	d.buf = make([]byte, 0, MaxPayload)
	d.data = data
	err := d.object(&r)
	return r, err
}

func sameRaw(a, b *RawBeat) bool {
	return a.V == b.V && bytes.Equal(a.ID, b.ID) && bytes.Equal(a.Host, b.Host) && a.PID == b.PID &&
		bytes.Equal(a.Boot, b.Boot) && a.Seq == b.Seq && a.TS == b.TS && a.IntervalMS == b.IntervalMS &&
		a.Leaving == b.Leaving && bytes.Equal(a.Version, b.Version) && bytes.Equal(a.Labels, b.Labels) &&
		(a.Version == nil) == (b.Version == nil) && (a.Labels == nil) == (b.Labels == nil)
}

// checkAgrees fails if the fast path accepts data and the general path
// does not, or decodes it differently.
func checkAgrees(t *testing.T, data []byte) (fastTook bool) {
	t.Helper()
	if len(data) > MaxPayload {
		return false // Decode refuses it before either path runs
	}
	var d Decoder
	d.buf = make([]byte, 0, MaxPayload)
	var f RawBeat
	if !d.fast(data, &f) {
		return false
	}
	g, err := general(data)
	if err != nil {
		t.Fatalf("fast path accepted %q, general path refused it: %v", data, err)
	}
	if !sameRaw(&f, &g) {
		t.Fatalf("paths disagree on %q:\nfast    %+v\ngeneral %+v", data, f, g)
	}
	return true
}

func FuzzFastPathAgrees(f *testing.F) {
	b := Beat{V: Version, ID: "web-1", Host: "web-1.example.com", PID: 7, Boot: "b00t", Seq: 9,
		TS: time.Date(2026, 2, 28, 23, 59, 60, 5, time.UTC), IntervalMS: 1000, Status: StatusAlive,
		Version: "v1", Labels: map[string]string{"az": "a", "r\u00e9le": "x\"y"}}
	f.Add(AppendBeat(nil, &b))
	b.Labels, b.Status, b.Host = nil, StatusLeaving, ""
	f.Add(AppendBeat(nil, &b))
	f.Add([]byte(`{"v":1,"id":"a","host":"","pid":0,"boot":"b","seq":18446744073709551615,"ts":"2026-01-01T00:00:00+01:00","interval_ms":9007199254740992,"status":"alive","version":""}`))
	f.Add([]byte(`{"v":1,"id":"a","host":"","pid":01,"boot":"b","seq":1,"ts":"2026-01-01T00:00:00Z","interval_ms":1,"status":"alive","version":"","labels":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkAgrees(t, data) })
}

// TestFastPathTakesEncoderOutput pins that the fast path is the one beats
// written by AppendBeat go through, and that what it gives up on still
// decodes (or fails) through the general path.
func TestFastPathTakesEncoderOutput(t *testing.T) {
	base := Beat{V: Version, ID: "web-1", Host: "web-1.example.com", PID: 4242, Boot: "9f86d081",
		Seq: 1 << 40, TS: time.Date(2026, 11, 25, 14, 0, 0, 123456789, time.UTC), IntervalMS: 1000,
		Status: StatusAlive, Version: "v1.2.3"}
	cases := []struct {
		name string
		edit func(b *Beat)
		fast bool
	}{
		{"plain", func(*Beat) {}, true},
		{"leaving", func(b *Beat) { b.Status = StatusLeaving }, true},
		{"labels", func(b *Beat) { b.Labels = map[string]string{"az": "eu-1a", "role": "web"} }, true},
		{"escaped label", func(b *Beat) { b.Labels = map[string]string{"q": `a"b`} }, true},
		{"empty host and version", func(b *Beat) { b.Host, b.Version = "", "" }, true},
		{"zoned ts", func(b *Beat) { b.TS = b.TS.In(time.FixedZone("x", -5*3600-30*60)) }, true},
		{"non-ASCII host", func(b *Beat) { b.Host = "höst" }, false},
		{"escaped version", func(b *Beat) { b.Version = `v"1` }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := base
			c.edit(&b)
			data := AppendBeat(nil, &b)
			if got := checkAgrees(t, data); got != c.fast {
				t.Fatalf("fast path took it: %v, want %v (%s)", got, c.fast, data)
			}
			var d Decoder
			var r RawBeat
			if err := d.Decode(data, &r); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := r.Beat()
			if got.ID != b.ID || got.Host != b.Host || got.Seq != b.Seq || !got.TS.Equal(b.TS.Truncate(time.Millisecond)) || got.Status != b.Status || got.Version != b.Version || len(got.Labels) != len(b.Labels) {
				t.Fatalf("decoded %+v, want %+v", got, b)
			}
		})
	}
}

// TestFastPathGivesUpOnBadValues: every rule the general path enforces
// must also stop the fast path, so the error comes from the general path.
func TestFastPathGivesUpOnBadValues(t *testing.T) {
	ok := `{"v":1,"id":"a","host":"h","pid":1,"boot":"b","seq":1,"ts":"2026-01-01T00:00:00Z","interval_ms":1000,"status":"alive","version":"v"}`
	if !checkAgrees(t, []byte(ok)) {
		t.Fatalf("fast path refused the reference beat %s", ok)
	}
	bad := map[string][2]string{
		"version 2":       {`"v":1`, `"v":2`},
		"bad id":          {`"id":"a"`, `"id":"a.b"`},
		"empty id":        {`"id":"a"`, `"id":""`},
		"long id":         {`"id":"a"`, fmt.Sprintf(`"id":"%065d"`, 0)},
		"empty boot":      {`"boot":"b"`, `"boot":""`},
		"seq zero":        {`"seq":1`, `"seq":0`},
		"seq overflow":    {`"seq":1`, `"seq":18446744073709551616`},
		"pid too large":   {`"pid":1`, `"pid":2147483648`},
		"negative pid":    {`"pid":1`, `"pid":-1`},
		"leading zero":    {`"pid":1`, `"pid":01`},
		"fraction":        {`"interval_ms":1000`, `"interval_ms":1000.5`},
		"interval 0":      {`"interval_ms":1000`, `"interval_ms":0`},
		"interval > 2^53": {`"interval_ms":1000`, `"interval_ms":9007199254740993`},
		"bad ts":          {`2026-01-01T00:00:00Z`, `2026-02-30T00:00:00Z`},
		"bad status":      {`"alive"`, `"dead"`},
		"trailing data":   {`"version":"v"}`, `"version":"v"}x`},
		"control byte":    {`"host":"h"`, "\"host\":\"\x01\""},
		"duplicate label": {`"version":"v"}`, `"version":"v","labels":{"a":"1","a":"2"}}`},
	}
	for name, edit := range bad {
		data := bytes.Replace([]byte(ok), []byte(edit[0]), []byte(edit[1]), 1)
		if bytes.Equal(data, []byte(ok)) {
			t.Fatalf("%s: edit did not apply", name)
		}
		if checkAgrees(t, data) {
			t.Errorf("%s: fast path accepted %s", name, data)
		}
		if _, err := DecodeBeat(data); err == nil {
			t.Errorf("%s: Decode accepted %s", name, data)
		}
	}
}

// parseRFC3339 is the stateless parse the decoder's tsCache must agree
// with: the minute and the seconds parsed afresh.
func parseRFC3339(b []byte) (time.Time, bool) {
	base, ok := parseMinute(b)
	if !ok {
		return time.Time{}, false
	}
	return parseSeconds(b, base)
}

// TestParseRFC3339AgreesWithTime checks the calendar arithmetic against
// the time package over every day of several centuries, leap days and
// offsets included.
func TestParseRFC3339AgreesWithTime(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 13*3600+45*60), time.FixedZone("", -(9*3600 + 30*60))}
	day := time.Date(1600, 1, 1, 23, 59, 58, 999999999, time.UTC)
	end := time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)
	for n := 0; day.Before(end); n++ {
		want := day.In(zones[n%len(zones)])
		s := want.Format(time.RFC3339Nano)
		got, ok := parseRFC3339([]byte(s))
		if !ok || !got.Equal(want) {
			t.Fatalf("parseRFC3339(%q) = %v, %v; want %v", s, got, ok, want)
		}
		day = day.AddDate(0, 0, 1)
	}
	for _, s := range []string{"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "0004-02-29T12:00:00-01:00"} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := parseRFC3339([]byte(s)); !ok || !got.Equal(want) {
			t.Fatalf("parseRFC3339(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z"} {
		if _, ok := parseRFC3339([]byte(s)); ok {
			t.Errorf("parseRFC3339(%q) accepted an impossible date", s)
		}
	}
}

// TestParseRFC3339Fractions checks fractions of every length against the
// time package, including digits past the nanosecond.
func TestParseRFC3339Fractions(t *testing.T) {
	for _, frac := range []string{"", ".5", ".05", ".123", ".000001", ".12345678", ".123456789", ".000000001", ".1234567891", ".99999999999"} {
		for _, zone := range []string{"Z", "+02:00", "-11:30"} {
			s := "2026-11-25T16:37:05" + frac + zone
			want, err := time.Parse(time.RFC3339Nano, s)
			got, ok := parseRFC3339([]byte(s))
			if ok != (err == nil) || (ok && !got.Equal(want)) {
				t.Errorf("parseRFC3339(%q) = %v, %v; time.Parse = %v, %v", s, got, ok, want, err)
			}
		}
	}
}

// TestTSCacheAgreesWithTime runs one tsCache over a sequence in which
// consecutive times share their minute, change it, and break the rules
// after a valid time with the same minute, and checks every answer
// against the time package.
func TestTSCacheAgreesWithTime(t *testing.T) {
	var c tsCache
	for _, s := range []string{
		"2026-11-25T16:37:05Z",
		"2026-11-25T16:37:06.5Z",
		"2026-11-25T16:37:59.999999999+02:00",
		"2026-11-25T16:37:60Z", // RFC 3339 allows a leap second; it rolls into the next minute
		"2026-11-25T16:37:61Z",
		"2026-11-25T16:37:5Z",
		"2026-11-25T16:37:05.Z",
		"2026-11-25T16:37:05",
		"2026-11-25T16:37:05Zjunk",
		"2026-11-25T16:37;05Z",
		"2026-11-25T16:38:00Z",
		"2026-11-25T16:38:00.1234567891-11:30",
		"2026-02-29T16:38:00Z", // not a leap year
		"2026-11-25T16:38:01Z", // after a refused minute, the cached one still answers
		"2024-02-29T23:59:59Z",
		"2024-02-29T23:59:59z",
		"2024-02-29t23:59:59Z",
		"2024-02-29T24:00:00Z",
		"2024-02-29T23:60:00Z",
	} {
		// RFC 3339 allows a leap second and lower-case t and z, which
		// time.Parse refuses; compare those with the upper-case, :59 form.
		std := strings.NewReplacer("t", "T", "z", "Z", ":60Z", ":59Z").Replace(s)
		want, err := time.Parse(time.RFC3339Nano, std)
		if std != s && err == nil && strings.HasSuffix(s, ":60Z") {
			want = want.Add(time.Second)
		}
		got, ok := c.parse([]byte(s))
		if ok != (err == nil) || (ok && !got.Equal(want)) {
			t.Errorf("tsCache.parse(%q) = %v, %v; time.Parse = %v, %v", s, got, ok, want, err)
		}
		if one, ok1 := parseRFC3339([]byte(s)); ok1 != ok || !one.Equal(got) {
			t.Errorf("parseRFC3339(%q) = %v, %v; the cache said %v, %v", s, one, ok1, got, ok)
		}
	}
}

// FuzzTSCacheAgrees parses two times in a row with one tsCache, so the
// second may hit the minute the first left behind, and checks both
// answers against the stateless parser.
func FuzzTSCacheAgrees(f *testing.F) {
	f.Add("2026-11-25T16:37:05Z", "2026-11-25T16:37:06.5+02:00")
	f.Add("2026-11-25T16:37:05Z", "2026-11-25T16:37:61Z")
	f.Add("2024-02-29T23:59:59Z", "2024-02-29T23:59:60.123456789Z")
	f.Add("2026-02-29T00:00:00Z", "2026-02-29T00:00:01Z")
	f.Fuzz(func(t *testing.T, a, b string) {
		var c tsCache
		for _, s := range []string{a, b, a} {
			got, ok := c.parse([]byte(s))
			want, wok := parseRFC3339([]byte(s))
			if ok != wok || !got.Equal(want) {
				t.Fatalf("after %q: tsCache.parse(%q) = %v, %v; parseRFC3339 = %v, %v", a, s, got, ok, want, wok)
			}
		}
	})
}
