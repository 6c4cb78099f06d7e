package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// realisticFleet returns n peers whose JSON looks like a real monitor's:
// varied ids, hosts, boots, pids and sequence numbers, nanosecond
// timestamps, two labels, a few peers not alive. Compression ratios depend
// on exactly this variety, so newFake's identical peers would flatter
// gzip. The seed is fixed: every run measures the same table.
func realisticFleet(n int) *fakeSource {
	rng := rand.New(rand.NewPCG(1, 2))
	roles := []string{"web", "api", "db", "cache", "worker"}
	src := newFake(0)
	for i := range n {
		role := roles[i%len(roles)]
		id := fmt.Sprintf("%s-%05d", role, i)
		p := monitor.PeerInfo{
			ID: id, Host: id + ".prod.example.com", State: monitor.StateAlive,
			Since:    t0.Add(-time.Duration(rng.Int64N(int64(7 * 24 * time.Hour)))),
			LastBeat: t0.Add(-time.Duration(rng.Int64N(int64(time.Second)))),
			Seq:      rng.Uint64N(1_000_000), Boot: fmt.Sprintf("%016x", rng.Uint64()),
			PID: 1000 + rng.IntN(4_000_000), Interval: time.Second, Version: "v0.1.0",
			Labels:    map[string]string{"role": role, "az": fmt.Sprintf("eu-1%c", 'a'+rune(i%3))},
			ClockSkew: time.Duration(rng.Int64N(100)-50) * time.Millisecond,
			History:   1<<32 - 1,
		}
		if rng.IntN(10) == 0 {
			p.ProbeRTT = time.Duration(200+rng.IntN(2800)) * time.Microsecond
		}
		switch {
		case i%100 == 7:
			p.State, p.History = monitor.StateDead, 0xFFFFFFF0
		case i%250 == 3:
			p.State, p.History = monitor.StateSuspect, 0xFFFFFFFE
		case i%500 == 11:
			p.State, p.History = monitor.StateLeft, 0
		}
		src.peers = append(src.peers, p)
	}
	return src
}

// discardWriter counts the body bytes a handler sends and keeps none.
type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkAPIResponse serves the dashboard's requests from the real
// handler over a 10,000-peer table and reports the body bytes each sends
// (resp-bytes), plain and gzipped. Run it with
//
//	go test -run '^$' -bench APIResponse -benchtime 20x ./internal/httpapi/
//
// The figures are in docs/PERFORMANCE.md.
func BenchmarkAPIResponse(b *testing.B) {
	srv, _ := newServer(b, realisticFleet(10_000))
	h := srv.Handler()
	for _, path := range []string{"/api/peers", "/api/peers?limit=1000", "/api/peers?limit=500", "/api/peers?limit=500&q=web-0001", "/api/status"} {
		for _, enc := range []string{"identity", "gzip"} {
			b.Run(fmt.Sprintf("%s/%s", path, enc), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Accept-Encoding", enc)
				w := &discardWriter{h: http.Header{}}
				for b.Loop() {
					w.n = 0
					clear(w.h)
					h.ServeHTTP(w, req)
				}
				if got := w.h.Get("Content-Encoding"); (enc == "gzip") != (got == "gzip") {
					b.Fatalf("Content-Encoding %q for Accept-Encoding %s", got, enc)
				}
				b.ReportMetric(float64(w.n), "resp-bytes")
			})
		}
	}
}

// BenchmarkGzipLevel compresses the full 10,000-peer /api/peers body at
// three levels, the cost and size behind the choice of gzip.BestSpeed.
func BenchmarkGzipLevel(b *testing.B) {
	srv, _ := newServer(b, realisticFleet(10_000))
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/peers", nil))
	body := w.Body.Bytes()
	for _, l := range []struct {
		name  string
		level int
	}{{"BestSpeed", gzip.BestSpeed}, {"Default", gzip.DefaultCompression}, {"BestCompression", gzip.BestCompression}} {
		b.Run(l.name, func(b *testing.B) {
			var out bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&out, l.level)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				out.Reset()
				zw.Reset(&out)
				zw.Write(body)
				zw.Close()
			}
			b.ReportMetric(float64(out.Len()), "resp-bytes")
		})
	}
}
