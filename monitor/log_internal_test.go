package monitor

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestRejectionLogLevels: a probe reply to no open probe (typically a late
// answer after a thaw) is logged at info, other rejections warn, and each
// says whether a beat or a probe reply was rejected.
func TestRejectionLogLevels(t *testing.T) {
	var buf bytes.Buffer
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(&nats.Conn{}, cfg) // New does no I/O
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.rejectLocked(rejProbeUnsolicited, "late", nil)
	m.rejectLocked(rejProbeMismatch, "spoof", errors.New("reply id"))
	m.rejectLocked(rejReplay, "old", nil)
	m.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=INFO msg="probe reply to no open probe ignored" reason=probe_unsolicited peer=late`,
		`level=WARN msg="probe reply rejected" reason=probe_mismatch peer=spoof`,
		`level=WARN msg="beat rejected" reason=replay peer=old`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to contain %s", i, lines[i], w)
		}
	}
	if st := m.Stats(); st.Rejected[rejProbeUnsolicited] != 1 || st.Rejected[rejReplay] != 1 {
		t.Errorf("rejections not counted: %v", st.Rejected)
	}
}
