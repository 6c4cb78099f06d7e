// Package syncio has the one writer that goroutines share: a benchmark's
// progress beside its child processes' stderr, or a test's logger on
// another goroutine while the test reads what it wrote.
package syncio

import (
	"bytes"
	"io"
	"sync"
)

// Writer serialises writes, so that writes from several goroutines never
// interleave. They go to W; with W nil, the Writer keeps them, for
// String. The zero Writer is ready to use.
type Writer struct {
	W   io.Writer
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.W != nil {
		return w.W.Write(p)
	}
	return w.buf.Write(p)
}

// String returns everything written so far with W nil.
func (w *Writer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
