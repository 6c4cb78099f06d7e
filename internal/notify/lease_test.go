package notify_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/faultproxy"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
)

// TestLeaseLostStopsTheHook: a worker cut off from the server while its
// hook runs (a partition: silence, no error) can no longer tell the
// server it is at work, so after AckWait the server hands the event to
// another worker. The first hook must be dead by then: two runs of one
// event never overlap. Each run holds a lock that only its death lets go
// (flock), and a run that finds the lock taken says so.
func TestLeaseLostStopsTheHook(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	px, err := faultproxy.New("127.0.0.1:0", strings.TrimPrefix(url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })

	dir := t.TempDir()
	lock, log := filepath.Join(dir, "lock"), filepath.Join(dir, "log")
	hook := fmt.Sprintf(`exec 9>>%q; flock -n 9 || { echo overlap >> %q; exit 1; }; echo "run $HBMESH_DELIVERY" >> %q; [ "$HBMESH_DELIVERY" != 1 ] || sleep 60`, lock, log, log)
	const ackWait = 2 * time.Second
	mod := func(c *notify.Config) { c.Command, c.AckWait, c.HookTimeout = hook, ackWait, time.Minute }

	// The first worker, behind the proxy, is alone when the event comes.
	cfg := notify.DefaultConfig(stream)
	mod(&cfg)
	a, err := notify.New(natstest.Connect(t, px.URL()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "worker behind the proxy", a.Run)
	waitConsumer(t, url, a.ConsumerName(notify.OutputExec), 0)
	p.Handle(deadEvent("web-1", 1))
	natstest.Eventually(t, "the first run", func() bool { return countFields(lines(t, log), 1, "1") == 1 })

	startNotifier(t, url, mod)
	px.Blackhole()
	natstest.Eventually(t, "a second run", func() bool {
		ls := lines(t, log)
		return countFields(ls, 1, "2") == 1 || countFields(ls, 0, "overlap") > 0
	})
	if ls := lines(t, log); countFields(ls, 0, "overlap") > 0 {
		t.Fatalf("the second run started while the first still ran:\n%s", strings.Join(ls, "\n"))
	}
	waitConsumer(t, url, a.ConsumerName(notify.OutputExec), 1)
	if st := a.Stats()[notify.OutputExec]; st.Sent != 0 || st.Retries != 1 {
		t.Errorf("cut-off worker's stats %+v, want the event counted as a retry, not sent", st)
	}
	px.Heal()
}
