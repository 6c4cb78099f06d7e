package monitor

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestPhiJitterAndLoss feeds the phi detector jittered, lossy beat streams
// and checks it neither convicts the living nor spares the dead.
func TestPhiJitterAndLoss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter float64 // fraction of the interval
		loss   float64
	}{
		{"steady", 0, 0},
		{"jitter 20%", 0.2, 0},
		{"loss 5%", 0.05, 0.05},
		{"loss 20% jitter 10%", 0.1, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Detector = DetectorPhi })
			rng := rand.New(rand.NewPCG(1, 2))
			iv := sec
			var seq uint64
			alive := true
			h.answer = func(string) bool { return alive }
			for range 2000 {
				seq++
				if rng.Float64() >= tc.loss {
					h.tab.observe("a", rawBeat("a", "b", seq, iv, false), h.now)
				}
				h.advance(time.Duration(float64(iv) * (1 + tc.jitter*(2*rng.Float64()-1))))
			}
			if n := h.count("a", StateDead); n != 0 {
				t.Fatalf("%d false deaths", n)
			}
			// Now it dies for real: no beats, no probe answers.
			alive = false
			h.advance(10 * sec)
			h.wantState("a", StateDead)
			p, _ := h.tab.peers.peek("a")
			if p.samples < uint32(h.cfg.PhiWarmup) {
				t.Fatalf("phi never warmed up: %d samples", p.samples)
			}
		})
	}
}

func TestPhiFasterThanFixedOnSteadyPeer(t *testing.T) {
	detect := func(d Detector) time.Duration {
		h := newHarness(t, func(c *Config) { c.Detector = d; c.PhiPause = 0.5 })
		var seq uint64
		for range 50 {
			seq++
			h.tab.observe("a", rawBeat("a", "b", seq, sec, false), h.now)
			h.advance(sec)
		}
		start := h.now
		for h.state("a") != StateDead {
			h.advance(10 * time.Millisecond)
		}
		return h.now.Sub(start)
	}
	fixed, phi := detect(DetectorFixed), detect(DetectorPhi)
	if phi >= fixed {
		t.Errorf("phi detected a steady peer's death after %v, fixed after %v: phi should adapt below the fixed 3x", phi, fixed)
	}
}
