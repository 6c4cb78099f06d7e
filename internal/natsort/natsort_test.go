package natsort

import (
	"slices"
	"strings"
	"testing"
)

// sorted is a list of ids in natural order.
var sorted = []string{"", "a", "a0", "a00", "a1", "a01", "a1b", "a2", "a10", "a010", "ab", "web-2", "web-2-1", "web-10", "web-10.3", "web-10.20", "web-99999999999999999999", "web-100000000000000000000", "web.1"}

func TestCompare(t *testing.T) {
	want := sorted
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, Compare)
	if !slices.Equal(got, want) {
		t.Errorf("sorted:\n got %q\nwant %q", got, want)
	}
	for i, a := range want {
		for j, b := range want {
			c := Compare(a, b)
			if (i < j && c >= 0) || (i == j && c != 0) || (i > j && c <= 0) {
				t.Errorf("Compare(%q, %q) = %d", a, b, c)
			}
		}
	}
}

// keyAgrees fails t if Key(a) and Key(b) contradict Compare(a, b).
func keyAgrees(t *testing.T, a, b string) {
	t.Helper()
	ka, kb := Key(a), Key(b)
	if c := Compare(a, b); (ka < kb && c >= 0) || (ka > kb && c <= 0) {
		t.Errorf("Key(%q) = %#x, Key(%q) = %#x, but Compare = %d", a, ka, b, kb, c)
	}
}

func TestKey(t *testing.T) {
	ids := append(slices.Clone(sorted), "0", "9", "10", "010", "123456789", "1234567890", "web-12345678", "web-123456789",
		"web-000000001x", "nodes-1", "node-1", "node-10", "node-2", "web-2-10", "web-2-9", "web-10.3", "a\x00", "a/", "a:", "a;", "a1234567890", "a12345678901", "ab-99999999")
	for _, a := range ids {
		for _, b := range ids {
			keyAgrees(t, a, b)
		}
	}
	// Every id of up to 5 bytes from "019a", alone and after a prefix
	// that leaves the key room for only part of them.
	small := []string{""}
	for i := 0; i < len(small) && len(small[i]) < 5; i++ {
		for _, c := range "019a" {
			small = append(small, small[i]+string(c))
		}
	}
	for _, prefix := range []string{"", "ab-"} {
		for _, a := range small {
			for _, b := range small {
				keyAgrees(t, prefix+a, prefix+b)
			}
		}
	}
	// Ids that differ early or in the length of a number are told apart
	// by their keys alone.
	for _, p := range [][2]string{{"web-2", "web-10"}, {"a", "b"}, {"db-9", "web-1"}, {"node-999", "node-1000"}, {"10", "9a"}} {
		lo, hi := p[0], p[1]
		if Compare(lo, hi) < 0 && Key(lo) >= Key(hi) || Compare(lo, hi) > 0 && Key(lo) <= Key(hi) {
			t.Errorf("Key(%q) = %#x and Key(%q) = %#x do not order them", lo, Key(lo), hi, Key(hi))
		}
	}
}

func FuzzKey(f *testing.F) {
	for i, a := range sorted {
		f.Add(a, sorted[len(sorted)-1-i])
	}
	f.Add("web-123456789", "web-1234567890")
	f.Add("a0b", "a00b1")
	f.Fuzz(func(t *testing.T, a, b string) { keyAgrees(t, a, b) })
}

// prefixAgrees fails t unless CommonPrefix(a, b) is a prefix of both, not
// ending in a digit, after which a and b compare as they do whole.
func prefixAgrees(t *testing.T, a, b string) {
	t.Helper()
	p := CommonPrefix(a, b)
	if !strings.HasPrefix(a, p) || !strings.HasPrefix(b, p) || (p != "" && isDigit(p[len(p)-1])) {
		t.Fatalf("CommonPrefix(%q, %q) = %q", a, b, p)
	}
	if c, r := Compare(a, b), Compare(a[len(p):], b[len(p):]); c != r {
		t.Errorf("Compare(%q, %q) = %d, but %d without their common prefix %q", a, b, c, r, p)
	}
}

func TestCommonPrefix(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"", "", ""},
		{"web-1", "web-1", "web-"},
		{"web-12", "web-13", "web-"},
		{"web-2", "web-10", "web-"},
		{"web-1a", "web-1b", "web-"},
		{"prod-eu-1-web-7", "prod-eu-1-db-7", "prod-eu-1-"},
		{"web-1", "db-1", ""},
		{"a", "ab", "a"},
		{"12", "13", ""},
	} {
		if got := CommonPrefix(c.a, c.b); got != c.want {
			t.Errorf("CommonPrefix(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
	for _, a := range sorted {
		for _, b := range sorted {
			prefixAgrees(t, a, b)
		}
	}
}

func FuzzCommonPrefix(f *testing.F) {
	f.Add("web-10", "web-2")
	f.Add("a01b1", "a1b01")
	f.Add("x-007-1", "x-007-01")
	f.Fuzz(func(t *testing.T, a, b string) { prefixAgrees(t, a, b) })
}
