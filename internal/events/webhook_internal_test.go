package events

import (
	"strconv"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// TestWebhookFiringIsBounded: a dead peer that never comes back (a host
// terminated without a goodbye, forgotten after the retention) sends no
// event that would take it out of the webhook's firing set, so the set is
// bounded: the oldest deaths go first.
func TestWebhookFiringIsBounded(t *testing.T) {
	w, err := NewWebhook(DefaultWebhookConfig("http://127.0.0.1:9/hook"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxFiring + 10 {
		ev := monitor.Event{Time: t0.Add(time.Duration(i) * time.Second), ID: "web-" + strconv.Itoa(i), State: monitor.StateDead, Prev: monitor.StateSuspect}
		w.payload(&ev)
		if len(w.firing) > maxFiring {
			t.Fatalf("after %d deaths the firing set holds %d peers, more than %d", i+1, len(w.firing), maxFiring)
		}
	}
	last := "web-" + strconv.Itoa(maxFiring+9)
	if _, ok := w.firing[last]; !ok {
		t.Fatalf("the latest death %s is not in the firing set", last)
	}
	if _, ok := w.firing["web-0"]; ok {
		t.Fatal("the oldest death is still in the firing set")
	}
}
