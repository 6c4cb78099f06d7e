package wire

import (
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The lexical layer of the Decoder: strings, numbers, skipped values and
// RFC 3339 times, each validated as it is scanned.

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
