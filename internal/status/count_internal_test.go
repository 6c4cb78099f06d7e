package status

import "testing"

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 peers", 1: "1 peer", 2: "2 peers"} {
		if got := count(n, "peer"); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
