package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/syncio"
)

// TestJSONLogDurations: the JSON log, the units' format in the journal,
// writes durations as the text log does ("1s"), and leaves other numbers
// alone.
func TestJSONLogDurations(t *testing.T) {
	for format, want := range map[string]string{
		"json": `"interval":"1.5s","seq":3`,
		"text": `interval=1.5s seq=3`,
	} {
		var out syncio.Writer
		log := (&logFlags{Format: format, Level: "info"}).logger(&out)
		log.Info("node beating", "interval", 1500*time.Millisecond, "seq", 3)
		if got := out.String(); !strings.Contains(got, want) {
			t.Errorf("%s: %s; want %s", format, got, want)
		}
	}
}
