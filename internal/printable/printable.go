// Package printable makes text from the network safe to show on a
// terminal. Ids are checked on the wire (wire.ValidateID), but a beat's
// host, version and boot, and everything in a discovery reply, may hold
// any UTF-8, including the escape sequences that recolour a terminal,
// retitle its window, move its cursor or, with a carriage return or a
// newline, print a forged line over or under a real one.
//
// [String] leaves ordinary text alone and quotes the rest, Go style, so
// odd input is both harmless and visible: "web-1" stays web-1, and
// "web-1\x1b[2J" is shown as "web-1\x1b[2J" in quotes. [Cut] does the same
// after bounding the length, and [Quote] quotes even printable text, for
// error messages. Renderers call them on every untrusted field
// at the moment they write it. JSON escapes C0 controls itself, but
// encoding/json leaves DEL and the C1 controls raw, which some terminals
// obey: [JSON] escapes those in encoded JSON.
package printable

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// String returns s if it is valid UTF-8 made only of printable runes
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space), and otherwise s quoted with strconv.Quote, which escapes
// control characters (C0, DEL, C1), invisible formatting such as the
// bidirectional overrides, unusual spaces and invalid bytes.
func String(s string) string {
	if Is(s) {
		return s
	}
	return strconv.Quote(s)
}

// Is reports whether String would return s unchanged.
func Is(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !unicode.IsPrint(r) {
			return false
		}
		i += n
	}
	return true
}

// Cut returns String of s cut to its first n runes, with "…" in place of
// the rest when there is more: for fields a hostile sender could make
// long enough to flood a screen or widen every row of a table. n below 1
// means 1.
func Cut(s string, n int) string {
	if head, cut := first(s, n); cut {
		return String(head) + "…"
	}
	return String(s)
}

// Quote is Cut, but always quoted (strconv.Quote): for an error message
// that names what it refuses.
func Quote(s string, n int) string {
	if head, cut := first(s, n); cut {
		return strconv.Quote(head) + "…"
	}
	return strconv.Quote(s)
}

// first returns the first n runes of s (at least one), and whether s
// has more.
func first(s string, n int) (string, bool) {
	n = max(n, 1)
	i := 0
	for k := range s {
		if i == n {
			return s[:k], true
		}
		i++
	}
	return s, false
}

// JSON escapes the DEL and C1 control characters (U+0080 to U+009F) that
// encoding/json leaves raw in strings, and returns the result: the same
// JSON value, safe to print on a terminal. It returns b itself when there
// are none. Outside strings JSON is ASCII, so in valid JSON every such
// character is within a string.
func JSON(b []byte) []byte {
	n := 0
	for i := range b {
		if b[i] == 0x7f || isC1(b, i) {
			n++
		}
	}
	if n == 0 {
		return b
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, len(b)+5*n)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == 0x7f:
			out = append(out, `\u007f`...)
		case isC1(b, i):
			out = append(out, '\\', 'u', '0', '0', hex[b[i+1]>>4], hex[b[i+1]&0xf])
			i++
		default:
			out = append(out, b[i])
		}
	}
	return out
}

// isC1 reports whether b[i:] starts with the UTF-8 encoding of a C1
// control, 0xc2 then 0x80 to 0x9f.
func isC1(b []byte, i int) bool {
	return b[i] == 0xc2 && i+1 < len(b) && 0x80 <= b[i+1] && b[i+1] <= 0x9f
}
