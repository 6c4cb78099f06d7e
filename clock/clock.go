// Package clock is the time seam of hbmesh. Node and monitor read time only
// through a [Clock], so tests drive timeouts with a [Fake] and never sleep.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes tickers.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of *time.Ticker that hbmesh uses.
type Ticker interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTicker) Stop()                 { r.t.Stop() }

// Fake is a manually advanced clock. Tickers fire during [Fake.Advance]
// exactly as a real ticker would, dropping ticks a slow reader misses.
// It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	added   chan struct{}
}

// NewFake returns a Fake clock set to start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, added: make(chan struct{}, 1)}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTicker returns a ticker driven by Advance.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{f: f, c: make(chan time.Time, 1), d: d, next: f.now.Add(d)}
	f.tickers = append(f.tickers, t)
	select {
	case f.added <- struct{}{}:
	default:
	}
	return t
}

// Tickers reports how many tickers are live.
func (f *Fake) Tickers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tickers)
}

// WaitTickers blocks until at least n tickers are live, so a test can
// start advancing only once the code under test is listening.
func (f *Fake) WaitTickers(n int) {
	for f.Tickers() < n {
		<-f.added
	}
}

// Advance moves the clock forward by d, firing tickers on the way.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		var first *fakeTicker
		for _, t := range f.tickers {
			if !t.next.After(end) && (first == nil || t.next.Before(first.next)) {
				first = t
			}
		}
		if first == nil {
			break
		}
		f.now = first.next
		first.next = first.next.Add(first.d)
		select {
		case first.c <- f.now:
		default:
		}
	}
	f.now = end
}

// Set jumps the clock to t without firing tickers in between, the way a
// stalled process sees time after it resumes. Tickers due by t fire once.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	for _, tk := range f.tickers {
		if !tk.next.After(t) {
			for !tk.next.After(t) {
				tk.next = tk.next.Add(tk.d)
			}
			select {
			case tk.c <- t:
			default:
			}
		}
	}
}

type fakeTicker struct {
	f    *Fake
	c    chan time.Time
	d    time.Duration
	next time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Reset(d time.Duration) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.d = d
	t.next = t.f.now.Add(d)
}

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, x := range t.f.tickers {
		if x == t {
			t.f.tickers = append(t.f.tickers[:i], t.f.tickers[i+1:]...)
			return
		}
	}
}
