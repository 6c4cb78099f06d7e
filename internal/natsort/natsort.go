// Package natsort orders peer ids as people read them: runs of digits
// compare as numbers, so web-2 comes before web-10. The dashboard, the
// HTTP API, discovery replies and hbmesh status all list peers in this
// order.
package natsort

import (
	"cmp"
	"encoding/binary"
	"strings"
)

// Compare orders ids byte by byte, except that runs of digits
// compare as numbers: "web-2" < "web-10". Of two equal numbers, the one
// with fewer leading zeros comes first, so distinct ids never compare
// equal.
func Compare(a, b string) int {
	zeros := 0 // leading-zero tie-break, decided by the first run that differs
	for len(a) > 0 && len(b) > 0 {
		if !isDigit(a[0]) || !isDigit(b[0]) {
			if a[0] != b[0] {
				return cmp.Compare(a[0], b[0])
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, rb := digitRun(a), digitRun(b)
		na, nb := strings.TrimLeft(a[:ra], "0"), strings.TrimLeft(b[:rb], "0")
		if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
			return c
		}
		if zeros == 0 {
			zeros = cmp.Compare(ra, rb)
		}
		a, b = a[ra:], b[rb:]
	}
	return cmp.Or(cmp.Compare(len(a), len(b)), zeros)
}

// Key returns a summary of s's place in the order of Compare that
// compares as a number: Key(a) < Key(b) means Compare(a, b) < 0, and
// Key(a) > Key(b) means Compare(a, b) > 0. Equal keys decide nothing;
// compare the ids then. It looks at the first 8 bytes of an encoding of s
// in which each run of digits is its length without leading zeros, as
// one byte, and then those digits, so ids that differ early, or in the
// length of a number, never need Compare. A list of ids that share a long
// prefix needs it more often.
func Key(s string) uint64 {
	var k [8]byte
	n := 0
	put := func(c byte) bool {
		if n == len(k) {
			return false
		}
		k[n] = c
		n++
		return true
	}
	for len(s) > 0 && n < len(k) {
		if !isDigit(s[0]) {
			put(s[0])
			s = s[1:]
			continue
		}
		r := digitRun(s)
		num := strings.TrimLeft(s[:r], "0")
		// The length byte is a digit itself ('0' + length), so against a
		// non-digit byte it sorts as the run's first digit does in
		// Compare. A length of 9 or more is '9' and ends the key: such
		// numbers could not be told apart by their length byte, and
		// keys that agree up to it are equal, which decides nothing.
		if len(num) >= 9 {
			put('9')
			break
		}
		put('0' + byte(len(num)))
		for i := 0; i < len(num) && put(num[i]); i++ {
		}
		s = s[r:]
	}
	return binary.BigEndian.Uint64(k[:]) // zero bytes after the end: a shorter id sorts first
}

// CommonPrefix returns the longest prefix a and b share that does not
// end in a digit. Strings that share it compare as the rest of them do:
// Compare(p+x, p+y) == Compare(x, y), so Key can be taken of the rest.
func CommonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	// A prefix that ended in a digit could cut a run of digits in two,
	// and the part after it would then compare as a different number.
	for n > 0 && isDigit(a[n-1]) {
		n--
	}
	return a[:n]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
