package syncio_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/hbmesh/hbmesh/internal/syncio"
)

// TestWriter: concurrent writes neither race (go test -race) nor
// interleave, kept or passed on to W.
func TestWriter(t *testing.T) {
	var kept syncio.Writer
	var into strings.Builder
	through := &syncio.Writer{W: &into}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				kept.Write([]byte("line\n"))
				through.Write([]byte("line\n"))
				_ = kept.String()
			}
		})
	}
	wg.Wait()
	want := strings.Repeat("line\n", 800)
	if got := kept.String(); got != want {
		t.Errorf("kept %d bytes, want %d of whole lines", len(got), len(want))
	}
	if got := into.String(); got != want {
		t.Errorf("W got %d bytes, want %d of whole lines", len(got), len(want))
	}
	if through.String() != "" {
		t.Errorf("a Writer with W keeps %q", through.String())
	}
}
