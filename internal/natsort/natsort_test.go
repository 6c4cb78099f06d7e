package natsort

import (
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	want := []string{"", "a", "a0", "a00", "a1", "a01", "a1b", "a2", "a10", "a010", "ab", "web-2", "web-2-1", "web-10", "web-10.3", "web-10.20", "web-99999999999999999999", "web-100000000000000000000", "web.1"}
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
