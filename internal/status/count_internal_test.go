package status

import "testing"

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n          int
		noun, want string
	}{{0, "peer", "0 peers"}, {1, "peer", "1 peer"}, {2, "peer", "2 peers"}, {1, "reply", "1 reply"}, {3, "reply", "3 replies"}} {
		if got := count(tc.n, tc.noun); got != tc.want {
			t.Errorf("count(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
}
