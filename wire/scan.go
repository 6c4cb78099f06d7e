package wire

import (
	"encoding/binary"
	"fmt"
	"math/bits"
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
// short printable-ASCII string, is scanned eight bytes at a time and
// needs no UTF-8 validation.
func (d *Decoder) str(skip bool) ([]byte, error) {
	data := d.data
	start := d.pos + 1 // past the opening quote
	i := start
	escaped, ascii := false, true
	for {
		i = plainRun(data, i)
		if i >= len(data) {
			d.pos = i
			return nil, d.fail(ReasonMalformed, "", "unterminated string")
		}
		switch c := data[i]; {
		case c == '"':
			s := data[start:i]
			d.pos = i + 1
			if escaped {
				return d.unescape(s, start, skip)
			}
			if !ascii && !utf8.Valid(s) {
				d.pos = i
				return nil, d.fail(ReasonUTF8, "", "string is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			escaped = true
			i += 2
		case c < 0x20:
			d.pos = i
			return nil, d.fail(ReasonMalformed, "", "control character in string")
		default: // >= 0x80
			ascii = false
			i++
		}
	}
}

// plainRun returns the index of the first byte at or after i that is not
// plain (see [plain]), or len(b). It looks at eight bytes per step: a word
// with no quote, no backslash, no control byte and no high bit is skipped
// whole.
func plainRun(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ (ones * '"')
		bs := w ^ (ones * '\\')
		// A byte of the mask has its high bit set where w's byte is below
		// 0x20, is '"' or '\\' (the xor made it zero), or is >= 0x80. A
		// borrow can only mark bytes above a true hit, so the lowest mark
		// is exact.
		m := (((w - ones*0x20) &^ w) | ((q - ones) &^ q) | ((bs - ones) &^ bs) | w) & highs
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
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

// digits steps over a run of decimal digits and returns its length.
func (d *Decoder) digits() int {
	start := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos - start
}

// number scans a JSON number and reports whether it is a plain integer.
func (d *Decoder) number() (neg bool, digits []byte, integer bool, err error) {
	start := d.pos
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		neg = true
		d.pos++
	}
	ds := d.pos
	d.digits()
	digits = d.data[ds:d.pos]
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		d.pos = start
		return false, nil, false, d.fail(ReasonMalformed, "", "bad number")
	}
	integer = true
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		integer = false
		d.pos++
		if d.digits() == 0 {
			return false, nil, false, d.fail(ReasonMalformed, "", "bad number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		integer = false
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return false, nil, false, d.fail(ReasonMalformed, "", "bad number")
		}
	}
	return neg, digits, integer, nil
}

// integer scans the value of key, which must be a JSON integer: no
// fraction, no exponent.
func (d *Decoder) integer(key string) (neg bool, digits []byte, err error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return false, nil, d.typeErr(key, "an integer")
	}
	neg, digits, integer, err := d.number()
	if err != nil {
		return false, nil, err
	}
	if !integer {
		return false, nil, d.fail(ReasonType, key, "want an integer")
	}
	return neg, digits, nil
}

func (d *Decoder) uint(key string) (uint64, error) {
	neg, digits, err := d.integer(key)
	if err != nil {
		return 0, err
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
	neg, digits, err := d.integer(key)
	if err != nil {
		return 0, err
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

// tsCache parses RFC 3339 times, 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm),
// without allocating, and remembers the minute of the last one. Beats that
// arrive together were sent within moments of each other, so nearly every
// timestamp shares its date, hour and minute with the one before; those
// are then matched as 16 bytes instead of validated and converted again.
// Everything after the minute is parsed every time.
type tsCache struct {
	lo, hi uint64 // the 16 bytes "2006-01-02T15:04", little-endian words
	base   int64  // Unix seconds at the start of that minute, before any zone offset
	ok     bool
}

func (c *tsCache) parse(b []byte) (time.Time, bool) {
	if len(b) < 20 {
		return time.Time{}, false
	}
	lo, hi := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if !c.ok || lo != c.lo || hi != c.hi {
		base, ok := parseMinute(b)
		if !ok {
			return time.Time{}, false
		}
		c.lo, c.hi, c.base, c.ok = lo, hi, base, true
	}
	return parseSeconds(b, c.base)
}

// twoDigits parses b[0:2] as a decimal number.
func twoDigits(b []byte) (int, bool) {
	h, l := b[0]-'0', b[1]-'0'
	return int(h)*10 + int(l), h <= 9 && l <= 9
}

// parseMinute validates the date, hour and minute of an RFC 3339 time,
// the first 16 bytes, and returns the Unix seconds at the start of that
// minute as if the time were in UTC.
func parseMinute(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' {
		return 0, false
	}
	y1, ok1 := twoDigits(b[0:2])
	y2, ok2 := twoDigits(b[2:4])
	mon, ok3 := twoDigits(b[5:7])
	day, ok4 := twoDigits(b[8:10])
	hh, ok5 := twoDigits(b[11:13])
	mm, ok6 := twoDigits(b[14:16])
	year := y1*100 + y2
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mon < 1 || mon > 12 || day < 1 || day > daysIn(mon, year) || hh > 23 || mm > 59 {
		return 0, false
	}
	return daysSinceEpoch(year, mon, day)*86400 + int64(hh*3600+mm*60), true
}

// parseSeconds parses what follows the minute of an RFC 3339 time,
// ":05[.frac](Z|+hh:mm|-hh:mm)", given the Unix seconds of that minute.
// Its callers have checked that b is at least 20 bytes long.
func parseSeconds(b []byte, base int64) (time.Time, bool) {
	if b[16] != ':' {
		return time.Time{}, false
	}
	ss, ok := twoDigits(b[17:19])
	if !ok || ss > 60 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i]-'0' <= 9 {
			if i-start < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return time.Time{}, false
		}
		nsec *= pow10[max(0, 9-(i-start))]
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
		oh, ok1 := twoDigits(b[i+1 : i+3])
		om, ok2 := twoDigits(b[i+4 : i+6])
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
	return time.Unix(base+int64(ss-off), int64(nsec)).UTC(), true
}

// pow10[k] is 10^k, for scaling a fraction of 9-k digits to nanoseconds.
var pow10 = [10]int{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

func daysIn(mon, year int) int {
	switch mon {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch counts days from 1970-01-01 to the given date in the
// proleptic Gregorian calendar, negative before it. It shifts the year to
// begin in March, so the leap day is the last day of its year, and counts
// whole 400-year eras of 146097 days.
func daysSinceEpoch(year, mon, day int) int64 {
	y := int64(year)
	if mon <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400     // [0, 399]
	m := int64(mon+9) % 12 // March = 0
	doy := (153*m+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
