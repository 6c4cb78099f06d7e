package monitor

import "testing"

func TestBeatQueueDefault(t *testing.T) {
	for _, tc := range []struct{ maxPeers, backlog, want int }{
		{10, 0, 4096},           // floor
		{100_000, 0, 200_000},   // 2*MaxPeers
		{1_000_000, 0, 1 << 18}, // ceiling
		{10, 10_000, 10_000},    // never below MaxBacklog
		{1_000_000, 1 << 20, 1 << 20},
	} {
		cfg := Config{MaxPeers: tc.maxPeers, MaxBacklog: tc.backlog}
		cfg.fillDefaults()
		if cfg.BeatQueue != tc.want {
			t.Errorf("MaxPeers %d, MaxBacklog %d: BeatQueue = %d, want %d", tc.maxPeers, tc.backlog, cfg.BeatQueue, tc.want)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("MaxPeers %d, MaxBacklog %d: %v", tc.maxPeers, tc.backlog, err)
		}
	}
}
