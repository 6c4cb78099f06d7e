package monitor

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRejectionLogLevels: a probe reply to no open probe (typically a late
// answer after a thaw) is logged at info, other rejections warn, and each
// says whether a beat or a probe reply was rejected.
func TestRejectionLogLevels(t *testing.T) {
	var buf bytes.Buffer
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := offline(t, cfg)
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

// TestForgottenPeersLogged: a dead peer forgotten after the retention is a
// warning (it stops counting as dead, so an alert on it resolves), a left
// one is info, and a mass forgetting is logged as a count after the first
// few lines.
func TestForgottenPeersLogged(t *testing.T) {
	var buf bytes.Buffer
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	m := offline(t, cfg)
	forgot := []forgotPeer{{id: "d", state: StateDead}, {id: "l", state: StateLeft}}
	for range 10 {
		forgot = append(forgot, forgotPeer{id: "x", state: StateLeft})
	}
	m.logForgotten(forgot)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="peer forgotten after the retention" peer=d state=dead`,
		`level=INFO msg="peer forgotten after the retention" peer=l state=left`,
		`level=INFO msg="peer forgotten after the retention" peer=x`,
		`level=INFO msg="peer forgotten after the retention" peer=x`,
		`level=INFO msg="peer forgotten after the retention" peer=x`,
		`level=INFO msg="more peers forgotten after the retention" count=7 retention=24h0m0s`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to contain %s", i, lines[i], w)
		}
	}
}
