// Package natsort orders peer ids as people read them: runs of digits
// compare as numbers, so web-2 comes before web-10. The dashboard, the
// HTTP API, discovery replies and hbmesh status all list peers in this
// order.
package natsort

import (
	"cmp"
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

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
