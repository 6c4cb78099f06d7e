package wire

import (
	"encoding/json"
	"fmt"
	"time"
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
// Decoder's scratch buffer. It is valid only until the next Decode or
// DecodeNext on the same Decoder and only while the input is unchanged;
// call [RawBeat.Beat] to keep it, or copy its fields into a [Sender].
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
	// Plain reports that ID, Host, Boot and Version hold only bytes
	// from 0x20 to 0x7F other than '"' and '\\', so that each is its own
	// JSON encoding: such a beat's fields make a [Sender] for
	// [Decoder.DecodeNext]. It is set only for a beat in AppendBeat's
	// layout (nearly every beat), so it may be false for a beat whose
	// strings are plain.
	Plain bool
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

// ParseLabels turns a labels object into a map, as encoding/json would:
// nil for anything that is not a JSON object of strings. An object that
// a Decoder accepted, as nearly every one a monitor holds is, is read by
// the decoder's own scanner, several times faster than encoding/json;
// anything else (a restored peer's labels need not keep the label rules)
// is left to encoding/json, whose reading is the definition
// (FuzzParseLabels checks the two agree).
func ParseLabels(raw []byte) map[string]string {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]string
	if len(raw) <= MaxLabelsBytes { // a Decoder refuses a longer one
		// Unescaping never lengthens a string, and the scanner needs its
		// scratch to hold them all without moving.
		d := Decoder{data: raw, buf: make([]byte, 0, len(raw))}
		m = map[string]string{}
		if _, err := d.labels(func(k, v []byte) { m[string(k)] = string(v) }); err == nil {
			if d.ws(); d.pos == len(raw) {
				return m
			}
		}
		m = nil
	}
	if json.Unmarshal(raw, &m) != nil {
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
	ts   tsCache
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
	if d.fast(data, out) {
		d.data = nil
		return nil
	}
	*out = RawBeat{}
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
		t, ok := d.ts.parse(s)
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
		raw, err := d.labels(nil)
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

// labels validates a labels object and returns its raw bytes. add, if
// not nil, is given each label as it is read; its slices are valid only
// during the call.
func (d *Decoder) labels(add func(k, v []byte)) ([]byte, error) {
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
		if add != nil {
			add(k, v)
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
