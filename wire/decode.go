package wire

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// bstr views b as a string without copying. The result must not outlive
// b's contents and is only ever used for comparisons and validation.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Reason is a short, stable name for why a payload was rejected. The set is
// closed, so it is safe to use as a metric label.
type Reason string

// Reasons a [Decoder] rejects a payload for.
const (
	ReasonOversize  Reason = "oversize"      // larger than MaxPayload
	ReasonMalformed Reason = "malformed"     // not a single valid JSON object
	ReasonType      Reason = "type"          // a known key holds the wrong JSON type
	ReasonRange     Reason = "range"         // a number or string is out of bounds
	ReasonMissing   Reason = "missing"       // a required key is absent
	ReasonVersion   Reason = "version"       // "v" is not a supported version
	ReasonUTF8      Reason = "utf8"          // a string is not valid UTF-8
	ReasonID        Reason = "id"            // "id" is not a valid id
	ReasonLabels    Reason = "labels"        // "labels" breaks the label rules
	ReasonStatus    Reason = "status"        // "status" is not alive or leaving
	ReasonDuplicate Reason = "duplicate_key" // a key appears twice
)

// DecodeError is returned for every rejected payload.
type DecodeError struct {
	Reason Reason
	Field  string // the key involved, if any
	Offset int    // byte offset in the payload
	Msg    string
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("bad beat: %s: %q: %s (at byte %d)", e.Reason, e.Field, e.Msg, e.Offset)
	}
	return fmt.Sprintf("bad beat: %s: %s (at byte %d)", e.Reason, e.Msg, e.Offset)
}

// RawBeat is a decoded beat whose string fields alias the input or the
// Decoder's scratch buffer. It is valid only until the next Decode on the
// same Decoder and only while the input is unchanged; call [RawBeat.Beat]
// to keep it.
type RawBeat struct {
	V          int
	ID         []byte
	Host       []byte
	PID        int
	Boot       []byte
	Seq        uint64
	TS         time.Time // zero if absent
	IntervalMS int64
	Leaving    bool   // status is "leaving"
	Version    []byte // nil if absent
	Labels     []byte // the raw, validated labels object; nil if absent
}

// Beat returns an owned copy of r.
func (r *RawBeat) Beat() Beat {
	b := Beat{
		V: r.V, ID: string(r.ID), Host: string(r.Host), PID: r.PID,
		Boot: string(r.Boot), Seq: r.Seq, TS: r.TS, IntervalMS: r.IntervalMS,
		Status: StatusAlive, Version: string(r.Version),
	}
	if r.Leaving {
		b.Status = StatusLeaving
	}
	if r.Labels != nil {
		b.Labels = ParseLabels(r.Labels)
	}
	return b
}

// ParseLabels turns a labels object that a Decoder accepted into a map. It
// returns nil for anything else.
func ParseLabels(raw []byte) map[string]string {
	var m map[string]string
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// DecodeBeat decodes and validates one beat payload.
func DecodeBeat(data []byte) (Beat, error) {
	var d Decoder
	var r RawBeat
	if err := d.Decode(data, &r); err != nil {
		return Beat{}, err
	}
	return r.Beat(), nil
}

// DecodeProbeReply decodes and validates a probe reply. A reply has the
// same shape and rules as a beat.
func DecodeProbeReply(data []byte) (Beat, error) { return DecodeBeat(data) }

// Decoder decodes beats. Its zero value is ready to use; reusing one
// Decoder makes decoding allocation-free. A Decoder is not safe for
// concurrent use.
type Decoder struct {
	buf  []byte // scratch for unescaped strings
	data []byte
	pos  int
}

const (
	fV = 1 << iota
	fID
	fHost
	fPID
	fBoot
	fSeq
	fTS
	fInterval
	fStatus
	fVersion
	fLabels
	required = fV | fID | fBoot | fSeq | fInterval | fStatus
)

// Decode parses data into out, reporting the first problem as a
// [*DecodeError]. Unknown keys are skipped so that v1 can grow; duplicate
// keys are refused so that a payload cannot say two things at once.
func (d *Decoder) Decode(data []byte, out *RawBeat) error {
	*out = RawBeat{}
	if len(data) > MaxPayload {
		return &DecodeError{Reason: ReasonOversize, Msg: fmt.Sprintf("%d bytes, at most %d allowed", len(data), MaxPayload)}
	}
	if cap(d.buf) < len(data) {
		d.buf = make([]byte, 0, max(len(data), MaxPayload))
	}
	d.buf = d.buf[:0]
	d.data, d.pos = data, 0
	err := d.object(out)
	d.data = nil
	return err
}

func (d *Decoder) fail(r Reason, field, msg string) error {
	return &DecodeError{Reason: r, Field: field, Offset: d.pos, Msg: msg}
}

func (d *Decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *Decoder) peek() byte {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return d.data[d.pos] // no whitespace: the encoder never writes any
	}
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *Decoder) object(out *RawBeat) error {
	if d.peek() != '{' {
		return d.fail(ReasonMalformed, "", "expected a JSON object")
	}
	d.pos++
	seen := 0
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			if d.peek() != '"' {
				return d.fail(ReasonMalformed, "", "expected a key")
			}
			key, err := d.str(false)
			if err != nil {
				return err
			}
			if d.peek() != ':' {
				return d.fail(ReasonMalformed, "", "expected ':'")
			}
			d.pos++
			d.ws()
			bit, err := d.field(bstr(key), out)
			if err != nil {
				return err
			}
			if bit != 0 {
				if seen&bit != 0 {
					return d.fail(ReasonDuplicate, string(key), "key appears twice")
				}
				seen |= bit
			}
			c := d.peek()
			d.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				d.pos--
				return d.fail(ReasonMalformed, "", "expected ',' or '}'")
			}
		}
	}
	if d.peek() != 0 {
		return d.fail(ReasonMalformed, "", "trailing data after the object")
	}
	if seen&required != required {
		for _, m := range []struct {
			bit  int
			name string
		}{{fV, "v"}, {fID, "id"}, {fBoot, "boot"}, {fSeq, "seq"}, {fInterval, "interval_ms"}, {fStatus, "status"}} {
			if seen&m.bit == 0 {
				return d.fail(ReasonMissing, m.name, "required key is absent")
			}
		}
	}
	return nil
}

// field decodes the value of key and returns the key's bit (0 if unknown).
func (d *Decoder) field(key string, out *RawBeat) (int, error) {
	switch key {
	case "v":
		n, err := d.int(key, 0, 1<<31)
		if err != nil {
			return 0, err
		}
		if n != Version {
			return 0, d.fail(ReasonVersion, key, fmt.Sprintf("protocol version %d is not supported (want %d)", n, Version))
		}
		out.V = int(n)
		return fV, nil
	case "id":
		s, err := d.strField(key, MaxIDLen)
		if err != nil {
			return 0, err
		}
		if r := idProblem(bstr(s)); r != "" {
			return 0, d.fail(ReasonID, key, r)
		}
		out.ID = s
		return fID, nil
	case "host":
		s, err := d.strField(key, MaxHostLen)
		out.Host = s
		return fHost, err
	case "pid":
		n, err := d.int(key, 0, 1<<31-1)
		out.PID = int(n)
		return fPID, err
	case "boot":
		s, err := d.strField(key, MaxBootLen)
		if err == nil && len(s) == 0 {
			err = d.fail(ReasonRange, key, "empty")
		}
		out.Boot = s
		return fBoot, err
	case "seq":
		n, err := d.uint(key)
		if err == nil && n == 0 {
			err = d.fail(ReasonRange, key, "seq starts at 1")
		}
		out.Seq = n
		return fSeq, err
	case "ts":
		s, err := d.strField(key, 64)
		if err != nil {
			return 0, err
		}
		t, ok := parseRFC3339(s)
		if !ok {
			return 0, d.fail(ReasonType, key, "not an RFC 3339 time")
		}
		out.TS = t
		return fTS, nil
	case "interval_ms":
		n, err := d.int(key, 1, 1<<53)
		out.IntervalMS = n
		return fInterval, err
	case "status":
		s, err := d.strField(key, 16)
		if err != nil {
			return 0, err
		}
		switch string(s) {
		case StatusAlive:
		case StatusLeaving:
			out.Leaving = true
		default:
			return 0, d.fail(ReasonStatus, key, fmt.Sprintf("%q is neither %q nor %q", s, StatusAlive, StatusLeaving))
		}
		return fStatus, nil
	case "version":
		s, err := d.strField(key, MaxVersionLen)
		out.Version = s
		return fVersion, err
	case "labels":
		raw, err := d.labels()
		out.Labels = raw
		return fLabels, err
	}
	return 0, d.skip(0)
}

func (d *Decoder) strField(key string, maxLen int) ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.typeErr(key, "a string")
	}
	s, err := d.str(false)
	if err != nil {
		if de, ok := err.(*DecodeError); ok && de.Field == "" {
			de.Field = key
		}
		return nil, err
	}
	if len(s) > maxLen {
		return nil, d.fail(ReasonRange, key, fmt.Sprintf("longer than %d bytes", maxLen))
	}
	return s, nil
}

func (d *Decoder) typeErr(key, want string) error {
	c := d.peek()
	switch c {
	case '"', '{', '[', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.fail(ReasonType, key, "want "+want)
	}
	return d.fail(ReasonMalformed, key, "expected a JSON value")
}

// plain[c] is true for bytes that may appear in a JSON string as
// themselves and need no further look: printable ASCII other than '"' and
// '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str decodes a string at d.pos (which is '"'). With skip set it only
// validates. Strings without escapes alias the input. The common case, a
// short printable-ASCII string, costs one table lookup per byte and no
// UTF-8 validation.
func (d *Decoder) str(skip bool) ([]byte, error) {
	d.pos++ // opening quote
	start := d.pos
	escaped, ascii := false, true
	data := d.data
	for {
		for d.pos < len(data) && plain[data[d.pos]] {
			d.pos++
		}
		if d.pos >= len(data) {
			return nil, d.fail(ReasonMalformed, "", "unterminated string")
		}
		switch c := data[d.pos]; {
		case c == '"':
			s := data[start:d.pos]
			d.pos++
			if escaped {
				return d.unescape(s, start, skip)
			}
			if !ascii && !utf8.Valid(s) {
				d.pos--
				return nil, d.fail(ReasonUTF8, "", "string is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			escaped = true
			d.pos += 2
		case c < 0x20:
			return nil, d.fail(ReasonMalformed, "", "control character in string")
		default: // >= 0x80
			ascii = false
			d.pos++
		}
	}
}

func (d *Decoder) unescape(s []byte, base int, skip bool) ([]byte, error) {
	out := d.buf[len(d.buf):]
	bad := func(i int, msg string) error {
		d.pos = base + i
		return d.fail(ReasonMalformed, "", msg)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n <= 1 {
				d.pos = base + i
				return nil, d.fail(ReasonUTF8, "", "string is not valid UTF-8")
			}
			out = append(out, s[i:i+n]...)
			i += n
			continue
		}
		if i+1 >= len(s) {
			return nil, bad(i, "bad escape")
		}
		switch s[i+1] {
		case '"', '\\', '/':
			out = append(out, s[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return nil, bad(i, "bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok2 = hex4(s[i+2:])
				}
				dec := utf16.DecodeRune(r, r2)
				if !ok2 || dec == utf8.RuneError {
					d.pos = base + i
					return nil, d.fail(ReasonUTF8, "", "unpaired surrogate in \\u escape")
				}
				r = dec
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, bad(i, "bad escape")
		}
		i += 2
	}
	if skip {
		return nil, nil
	}
	d.buf = d.buf[:len(d.buf)+len(out)]
	return out, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number scans a JSON number and reports whether it is a plain integer.
func (d *Decoder) number() (neg bool, digits []byte, integer bool, err error) {
	start := d.pos
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		neg = true
		d.pos++
	}
	ds := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	digits = d.data[ds:d.pos]
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		d.pos = start
		return false, nil, false, d.fail(ReasonMalformed, "", "bad number")
	}
	integer = true
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		integer = false
		d.pos++
		fs := d.pos
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
		}
		if d.pos == fs {
			return false, nil, false, d.fail(ReasonMalformed, "", "bad number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		integer = false
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		es := d.pos
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
		}
		if d.pos == es {
			return false, nil, false, d.fail(ReasonMalformed, "", "bad number")
		}
	}
	return neg, digits, integer, nil
}

func (d *Decoder) uint(key string) (uint64, error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.typeErr(key, "an integer")
	}
	neg, digits, integer, err := d.number()
	if err != nil {
		return 0, err
	}
	if !integer {
		return 0, d.fail(ReasonType, key, "want an integer")
	}
	if neg {
		return 0, d.fail(ReasonRange, key, "negative")
	}
	var n uint64
	for _, c := range digits {
		if n > (1<<64-1)/10 || n*10 > 1<<64-1-uint64(c-'0') {
			return 0, d.fail(ReasonRange, key, "too large")
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

func (d *Decoder) int(key string, lo, hi int64) (int64, error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.typeErr(key, "an integer")
	}
	neg, digits, integer, err := d.number()
	if err != nil {
		return 0, err
	}
	if !integer {
		return 0, d.fail(ReasonType, key, "want an integer")
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
		if n > hi+1 || n < 0 {
			return 0, d.fail(ReasonRange, key, fmt.Sprintf("out of range [%d, %d]", lo, hi))
		}
	}
	if neg {
		n = -n
	}
	if n < lo || n > hi {
		return 0, d.fail(ReasonRange, key, fmt.Sprintf("%d out of range [%d, %d]", n, lo, hi))
	}
	return n, nil
}

// labels validates a labels object and returns its raw bytes.
func (d *Decoder) labels() ([]byte, error) {
	const key = "labels"
	if d.peek() != '{' {
		return nil, d.typeErr(key, "an object")
	}
	start := d.pos
	d.pos++
	var keys [MaxLabels][]byte
	n := 0
	if d.peek() == '}' {
		d.pos++
		return d.data[start:d.pos], nil
	}
	for {
		if d.peek() != '"' {
			return nil, d.fail(ReasonMalformed, key, "expected a label key")
		}
		k, err := d.str(false)
		if err != nil {
			return nil, err
		}
		if msg := validLabelKey(bstr(k)); msg != "" {
			return nil, d.fail(ReasonLabels, key, fmt.Sprintf("key %q: %s", k, msg))
		}
		if n == MaxLabels {
			return nil, d.fail(ReasonLabels, key, fmt.Sprintf("more than %d labels", MaxLabels))
		}
		for _, prev := range keys[:n] {
			if string(prev) == string(k) {
				return nil, d.fail(ReasonLabels, key, fmt.Sprintf("key %q appears twice", k))
			}
		}
		keys[n] = k
		n++
		if d.peek() != ':' {
			return nil, d.fail(ReasonMalformed, key, "expected ':'")
		}
		d.pos++
		if d.peek() != '"' {
			return nil, d.fail(ReasonLabels, key, fmt.Sprintf("value of %q is not a string", k))
		}
		v, err := d.str(false)
		if err != nil {
			return nil, err
		}
		if len(v) > MaxLabelValueLen {
			return nil, d.fail(ReasonLabels, key, fmt.Sprintf("value of %q longer than %d bytes", k, MaxLabelValueLen))
		}
		c := d.peek()
		d.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			d.pos--
			return nil, d.fail(ReasonMalformed, key, "expected ',' or '}'")
		}
	}
	raw := d.data[start:d.pos]
	if len(raw) > MaxLabelsBytes {
		return nil, d.fail(ReasonLabels, key, fmt.Sprintf("object is %d bytes, at most %d allowed", len(raw), MaxLabelsBytes))
	}
	return raw, nil
}

const maxDepth = 16

// skip validates and steps over one JSON value of an unknown key.
func (d *Decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.fail(ReasonMalformed, "", "nested too deeply")
	}
	switch c := d.peek(); {
	case c == '"':
		_, err := d.str(true)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, _, err := d.number()
		return err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		d.pos++
		if d.peek() == closer {
			d.pos++
			return nil
		}
		for {
			if c == '{' {
				if d.peek() != '"' {
					return d.fail(ReasonMalformed, "", "expected a key")
				}
				if _, err := d.str(true); err != nil {
					return err
				}
				if d.peek() != ':' {
					return d.fail(ReasonMalformed, "", "expected ':'")
				}
				d.pos++
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			n := d.peek()
			d.pos++
			if n == closer {
				return nil
			}
			if n != ',' {
				d.pos--
				return d.fail(ReasonMalformed, "", "expected ',' or a closing bracket")
			}
		}
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
				d.pos += len(lit)
				return nil
			}
		}
		return d.fail(ReasonMalformed, "", "expected a JSON value")
	}
}

// parseRFC3339 parses an RFC 3339 time (with optional fraction) without
// allocating.
func parseRFC3339(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm)
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	mon, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hh, ok4 := num(b[11:13])
	mm, ok5 := num(b[14:16])
	ss, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		scale := 100000000
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start < 9 {
				nsec += int(b[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		if i == start {
			return time.Time{}, false
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	off := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return time.Time{}, false
		}
		oh, ok1 := num(b[i+1 : i+3])
		om, ok2 := num(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off = (oh*60 + om) * 60
		if b[i] == '-' {
			off = -off
		}
		i += 6
	default:
		return time.Time{}, false
	}
	if i != len(b) {
		return time.Time{}, false
	}
	if day > daysIn(time.Month(mon), year) {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, time.UTC)
	return t.Add(-time.Duration(off) * time.Second), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
