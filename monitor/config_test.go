package monitor_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

func TestConfigBeatQueue(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	for _, tc := range []struct {
		name                  string
		maxPeers, backlog, bq int
		err                   string // "" when the config is valid
	}{
		{name: "default", maxPeers: 0, backlog: 0, bq: 0},
		{name: "small fleet", maxPeers: 10, bq: 0},
		{name: "explicit", maxPeers: 10, bq: 5000},
		{name: "below backlog", backlog: 1024, bq: 10, err: "BeatQueue 10 must be within [MaxBacklog (1024)"},
		{name: "negative", bq: -1, err: "BeatQueue -1"},
		{name: "huge", bq: 1 << 30, err: "BeatQueue 1073741824"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := monitor.DefaultConfig()
			if tc.maxPeers != 0 {
				cfg.MaxPeers = tc.maxPeers
			}
			if tc.backlog != 0 {
				cfg.MaxBacklog = tc.backlog
			}
			cfg.BeatQueue = tc.bq
			err := cfg.Validate()
			if tc.err == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.err != "" && (!errors.Is(err, monitor.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig containing %q", err, tc.err)
			}
			if _, err := monitor.New(nc, cfg); (err == nil) != (tc.err == "") {
				t.Fatalf("New = %v, want error %v", err, tc.err != "")
			}
		})
	}
}

// TestStateSeverity: Severity is each state's place in States, worst
// first, and anything else sorts after them.
func TestStateSeverity(t *testing.T) {
	for i, s := range monitor.States() {
		if got := s.Severity(); got != i {
			t.Errorf("%v.Severity() = %d, want %d", s, got, i)
		}
	}
	for _, s := range []monitor.State{monitor.StateUnknown, monitor.State(200)} {
		if got := s.Severity(); got != len(monitor.States()) {
			t.Errorf("%v.Severity() = %d, want %d", s, got, len(monitor.States()))
		}
	}
}
