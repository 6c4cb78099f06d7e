package main

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/wire"
)

// hostileText is what an attacker who may publish beats or answer probes
// would like an operator's terminal to run: clear the screen, set the
// window title, go back to the start of the line and print a forged line.
const hostileText = "x\x1b[2J\x1b]0;owned\x07\r\n12:00:00.000 alive    db-1 beat"

// checkTerminalSafe fails if out holds anything but printable runes and
// the newlines that end its lines, or more than lines lines.
func checkTerminalSafe(t *testing.T, what, out string, lines int) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Errorf("%s holds %U:\n%q", what, r, out)
			break
		}
	}
	if n := strings.Count(out, "\n"); n > lines {
		t.Errorf("%s has %d lines, want at most %d:\n%s", what, n, lines, out)
	}
}

func hostileBeat(id, boot string, seq uint64, ts time.Time) []byte {
	return wire.AppendBeat(nil, &wire.Beat{V: 1, ID: id, Host: hostileText, PID: 1, Boot: boot, Seq: seq,
		TS: ts, IntervalMS: 1000, Status: wire.StatusAlive, Version: hostileText})
}

// TestMonitorTextEscapesHostileBeats: boot ids reach `hbmesh monitor`'s
// text lines on a restart or a conflict, and the wire lets them hold any
// UTF-8. A node must not be able to drive the operator's terminal with
// them.
func TestMonitorTextEscapesHostileBeats(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--log-level", "warn")
	natstest.WaitInterest(t, srv, "hb.anything")
	evil := natstest.Connect(t, url)
	subj := wire.MustSubjects("hb").Beat("evil")
	now := time.Now()
	// A first boot, a restart into a hostile boot, then the first boot
	// again: a conflict, whose line names both boots. The beats' ts are a
	// second apart, so none is taken for a flood.
	for i, step := range []struct{ boot, line string }{
		{"boot-1", "evil first_beat"},
		{hostileText, "restarted"},
		{"boot-1", "both claim this id"},
	} {
		if err := evil.Publish(subj, hostileBeat("evil", step.boot, uint64(i+1), now.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, step.line, func() bool { return strings.Contains(mon.stdout.String(), step.line) })
	}
	out := mon.stdout.String()
	checkTerminalSafe(t, "monitor output", out, 3)
	if !strings.Contains(out, `boot boot-1→"x\x1b[2J\x1b]0;owned\a\r\n12:00:00.000 alive    db-1 beat"`) {
		t.Errorf("restart line does not show the hostile boot escaped:\n%s", out)
	}
}

// TestProbeEscapesHostileAnswer: whoever answers a probe chooses the host
// and boot that `hbmesh probe` prints.
func TestProbeEscapesHostileAnswer(t *testing.T) {
	url := answerProbes(t, "evil", hostileBeat("evil", hostileText, 7, time.Now()))
	code, stdout, stderr := runSync(t, nil, "probe", "-s", url, "evil")
	if code != 0 {
		t.Fatalf("probe exit %d, stderr %q", code, stderr)
	}
	checkTerminalSafe(t, "probe output", stdout, 1)
	if !strings.Contains(stdout, `host "x\x1b[2J`) {
		t.Errorf("probe output does not show the hostile host escaped: %q", stdout)
	}
}

// TestProbeRefusesAnswerAboutAnotherNode: whoever answers on
// hb.web-1.probe may send another node's beat; a monitor counts that as
// probe_mismatch, and `hbmesh probe` must not report web-1 alive on it.
func TestProbeRefusesAnswerAboutAnotherNode(t *testing.T) {
	url := answerProbes(t, "web-1", hostileBeat("web-2", "boot-2", 7, time.Now()))
	code, stdout, stderr := runSync(t, nil, "probe", "-s", url, "web-1")
	if code != exitFailure || stdout != "" || !strings.Contains(stderr, `web-1: the answer is about "web-2", not the node probed`) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 naming the mismatch", code, stdout, stderr)
	}
}

// answerProbes starts a server on which a client that is not a node
// answers every probe of id with reply, and returns the server's URL.
func answerProbes(t *testing.T, id string, reply []byte) string {
	t.Helper()
	srv := natstest.Start(t)
	subj := wire.MustSubjects(wire.DefaultPrefix).Probe(id)
	evil := natstest.Connect(t, srv.ClientURL())
	if _, err := evil.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(reply) }); err != nil {
		t.Fatal(err)
	}
	natstest.WaitInterest(t, srv, subj)
	return srv.ClientURL()
}
