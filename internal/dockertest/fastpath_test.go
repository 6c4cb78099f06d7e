//go:build docker

package dockertest_test

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/monitor"
)

// deadEvent is a monitor's published dead event, as monitor.DecodeEvent
// reads it, and the id of the monitor that published it.
type deadEvent struct {
	monitor.Event
	Monitor string
}

// deadEvents subscribes, through nats-1's published port, to the dead
// events both monitors publish for id, until the returned stop.
type deadEvents struct {
	mu   sync.Mutex
	evs  []deadEvent
	nc   *nats.Conn
	sub  *nats.Subscription
	bad  []string
	note chan struct{}
}

func (c *cluster) watchDead(id string) *deadEvents {
	c.t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", c.ports["HBMESH_NATS_PORT"]), nats.Name("dockertest"))
	if err != nil {
		c.t.Fatalf("connect to nats-1: %v", err)
	}
	d := &deadEvents{nc: nc, note: make(chan struct{}, 1)}
	d.sub, err = nc.Subscribe("hb.events.dead."+id, func(m *nats.Msg) {
		ev, mon, err := monitor.DecodeEvent(m.Data)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.bad = append(d.bad, string(m.Data))
		} else {
			d.evs = append(d.evs, deadEvent{ev, mon})
		}
		select {
		case d.note <- struct{}{}:
		default:
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		c.t.Fatalf("subscribe to dead events: %v", err)
	}
	c.t.Cleanup(nc.Close)
	return d
}

// await waits until every monitor has published a dead event, and returns
// them by monitor.
func (d *deadEvents) await(c *cluster, within time.Duration) map[string]deadEvent {
	c.t.Helper()
	deadline := time.After(within)
	for {
		d.mu.Lock()
		got := map[string]deadEvent{}
		for _, ev := range d.evs {
			if _, ok := got[ev.Monitor]; !ok {
				got[ev.Monitor] = ev
			}
		}
		bad := d.bad
		d.mu.Unlock()
		if len(bad) > 0 {
			c.t.Fatalf("unparsable events: %q", bad)
		}
		if len(got) >= len(monitors) {
			return got
		}
		select {
		case <-d.note:
		case <-deadline:
			c.t.Fatalf("dead events within %v: %+v, want one from each of %v", within, got, monitors)
		}
	}
}

// crashNode runs a node in a container of its own on the cluster's
// network, given only nats-2's URL, beating every interval, until the
// test ends; it returns the container's name.
func (c *cluster) crashNode(id string, interval time.Duration) string {
	c.t.Helper()
	name := project + "-" + id
	out, err := exec.Command("docker", "run", "-d", "--rm", "--name", name, "--network", project+"_mesh",
		c.image, "node", "-s", "nats://nats-2:4222", "--id", id, "--interval", interval.String()).CombinedOutput()
	if err != nil {
		c.t.Fatalf("docker run %s: %v\n%s", name, err, out)
	}
	c.t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	c.names[strings.TrimSpace(string(out))] = id
	return name
}

// stepCrash: a node beating once a minute is killed (SIGKILL, no
// goodbye). Its timeout is three minutes, so a dead verdict within the
// step's deadline can only be the crash fast path's: both monitors must
// publish dead with reason disconnected. How long each took is logged,
// not judged.
func (c *cluster) stepCrash() {
	c.t.Helper()
	const id = "crash-1"
	name := c.crashNode(id, time.Minute)
	c.step("crash-1 (a 1 min interval, on nats-2) alive in both monitors", stepTimeout, nil, func(v view) error {
		return v.want([]string{id}, "alive")
	})
	deaths := c.watchDead(id)
	killed := time.Now()
	c.docker("kill", name)
	got := deaths.await(c, stepTimeout)
	for _, m := range monitors {
		ev := got[m]
		if ev.Reason != monitor.ReasonDisconnected {
			c.t.Fatalf("%s: dead event %+v, want reason disconnected", m, ev)
		}
		c.t.Logf("docker kill crash-1 → dead (reason %s) in %s: %v (monitor clock minus host clock at the kill)",
			ev.Reason, m, ev.Time.Sub(killed).Round(time.Millisecond))
	}
	c.step("docker kill crash-1: dead in both monitors", stepTimeout, nil, func(v view) error {
		return v.want([]string{id}, "dead")
	})
}
