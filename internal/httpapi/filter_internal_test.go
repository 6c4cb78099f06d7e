package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFilterStatesOnce: the filter keeps each state once however often
// the query names it, since every peer is checked against the list.
func TestFilterStatesOnce(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/peers?state="+strings.Repeat("dead,", 10_000)+"alive&state=dead", nil)
	f, err := parseFilter(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.states) != 2 {
		t.Errorf("filter holds %d states, want 2 (dead, alive)", len(f.states))
	}
}
