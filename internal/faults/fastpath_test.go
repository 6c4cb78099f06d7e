//go:build faults

package faults_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// The crash fast path's scenarios. The servers run with the mesh account
// (hbmesh server sets it up; with -c, the file below does the same, plus a
// system account user for the harness), so the monitor receives the
// DISCONNECT advisories, and it serves /metrics, whose counters show that
// each scenario did exercise the fast path.

const (
	sysUser     = "sys"
	sysPassword = "faults-sys-password"
)

// meshConf writes a server configuration with the accounts hbmesh server
// sets up (embedded.Config.MeshAccount), a system account user for the
// harness (kick, /connz), and extra lines.
func meshConf(t *testing.T, extra string) string {
	t.Helper()
	conf := fmt.Sprintf(`
accounts {
  %[1]s {
    users: [ { user: %[2]q, password: %[3]q } ]
    exports: [ { stream: %[4]q, account_token_position: 3 } ]
  }
  %[5]s {
    users: [ { user: mesh, password: "mesh" } ]
    imports: [ { stream: { account: %[1]s, subject: %[6]q } } ]
  }
}
system_account: %[1]s
no_auth_user: mesh
%[7]s
`, embedded.SystemAccount, sysUser, sysPassword, wire.DisconnectAdvisories,
		embedded.DefaultMeshAccount, wire.DisconnectAdvisorySubject(embedded.DefaultMeshAccount), extra)
	path := filepath.Join(t.TempDir(), "mesh.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// confServer starts `hbmesh server -c conf` with HTTP monitoring and
// returns its client URL and monitoring port.
func (s *sc) confServer(conf string) (url string, httpPort int) {
	s.t.Helper()
	port, httpPort := freePort(s.t), freePort(s.t)
	p := s.h.spawn(s.t, "nats", nil, "server", "-c", conf, "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-m", strconv.Itoa(httpPort), "--log-format", "json")
	s.procs = append(s.procs, p)
	if err := waitPort(fmt.Sprintf("127.0.0.1:%d", port), readyTimeout); err != nil {
		s.t.Fatalf("server: %v\n%s", err, p.tail(20))
	}
	return natsURL(port), httpPort
}

// monitorHTTP starts the monitor with --http, for its /metrics and API,
// and waits until the crash fast path is on.
func (s *sc) monitorHTTP(url string) {
	s.t.Helper()
	s.httpPort = freePort(s.t)
	s.mon = s.h.startMonitor(s.t, "monitor", url, "--http", fmt.Sprintf("127.0.0.1:%d", s.httpPort))
	s.procs = append(s.procs, s.mon.proc)
	s.awaitMetric("hbmesh_fast_path", "", 1)
}

// get fetches path from port on loopback and decodes JSON into v, or
// returns the body in raw.
func get(port int, path string, v any) (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if v != nil {
		return "", json.NewDecoder(resp.Body).Decode(v)
	}
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String(), sc.Err()
}

// metric returns the value of the monitor's metric name{labels} ("" for
// none), or -1 if it cannot be read.
func (s *sc) metric(name, labels string) float64 {
	body, err := get(s.httpPort, "/metrics", nil)
	if err != nil {
		return -1
	}
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// awaitMetric waits until the monitor's metric reaches at least want, or
// records a problem after the dead timeout plus missBound.
func (s *sc) awaitMetric(name, labels string, want float64) bool {
	s.t.Helper()
	deadline := time.Now().Add(s.h.timeout + missBound)
	tick := time.NewTicker(20 * time.Millisecond) // nothing to wait on but the counter
	defer tick.Stop()
	for {
		if s.metric(name, labels) >= want {
			return true
		}
		if time.Now().After(deadline) {
			s.res.problem("%s{%s} did not reach %v within %v (it is %v)", name, labels, want, s.h.timeout+missBound, s.metric(name, labels))
			return false
		}
		<-tick.C
	}
}

// checked returns how many advisories the monitor has started a check
// for.
func (s *sc) checked() float64 {
	return s.metric("hbmesh_disconnect_advisories_total", `result="checked"`)
}

// awaitChecked waits until the monitor has started a check for more than
// before advisories and every check it started has ended (alive, dead or
// fallback), or records a problem.
func (s *sc) awaitChecked(before float64) {
	s.t.Helper()
	if !s.awaitMetric("hbmesh_disconnect_advisories_total", `result="checked"`, before+1) {
		return
	}
	deadline := time.Now().Add(s.h.timeout + missBound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ended := s.checks("alive") + s.checks("dead") + s.checks("fallback")
		if ended >= s.checked() {
			return
		}
		if time.Now().After(deadline) {
			s.res.problem("%v checks started, %v ended", s.checked(), ended)
			return
		}
		<-tick.C
	}
}

// checks returns the monitor's fast-path check count with outcome.
func (s *sc) checks(outcome string) float64 {
	return s.metric("hbmesh_fast_path_checks_total", `outcome="`+outcome+`"`)
}

// noteCounters adds the monitor's advisory and check counters to the
// notes, after what.
func (s *sc) noteCounters(what string) {
	if what != "" {
		what += ": "
	}
	s.res.notes = append(s.res.notes, fmt.Sprintf("%sadvisories checked %v, left to the timeout by their reason %v; checks alive %v / dead %v / fallback %v",
		what, s.checked(), s.metric("hbmesh_disconnect_advisories_total", `result="reason"`),
		s.checks("alive"), s.checks("dead"), s.checks("fallback")))
}

// heardSince waits until the monitor has a beat from id that arrived after
// at: the node is back.
func (s *sc) heardSince(id string, at time.Time) {
	s.t.Helper()
	deadline := time.Now().Add(s.h.timeout + missBound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var p monitor.PeerJSON
		if _, err := get(s.httpPort, "/api/peers/"+id, &p); err == nil && p.LastBeat.After(at) {
			if p.State != monitor.StateAlive {
				s.res.problem("%s beats again but is %s", id, p.State)
			}
			return
		}
		if time.Now().After(deadline) {
			s.res.problem("no beat from %s since %s", id, at.Format("15:04:05.000"))
			return
		}
		<-tick.C
	}
}

// cluster3 starts three clustered `hbmesh server`s (with the mesh
// account) and returns their client ports and processes.
func (s *sc) cluster3() ([3]int, []*proc) {
	s.t.Helper()
	var ports, cports [3]int
	for j := range 3 {
		ports[j], cports[j] = freePort(s.t), freePort(s.t)
	}
	servers := make([]*proc, 3)
	for j := range 3 {
		var routes []int
		for k := range 3 {
			if k != j {
				routes = append(routes, cports[k])
			}
		}
		name := fmt.Sprintf("nats-%d", j)
		servers[j] = s.h.spawn(s.t, name, nil, serverArgs(name, ports[j], cports[j], routes)...)
		s.procs = append(s.procs, servers[j])
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for j := range 3 {
		wg.Go(func() { errs[j] = waitPort(fmt.Sprintf("127.0.0.1:%d", ports[j]), readyTimeout) })
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			s.t.Fatalf("server %d: %v\n%s", j, err, servers[j].tail(20))
		}
	}
	return ports, servers
}

func fastCut(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	port, url := s.oneServer()
	s.monitorHTTP(url)
	s.alive(time.Time{}, s.bystanders(url, 2)...)
	for i := range *trials {
		id := fmt.Sprintf("cut-%d", i)
		px := s.proxy(fmt.Sprintf("127.0.0.1:%d", port))
		n := s.victim(id, px.URL())
		checked := s.checked()
		cut := time.Now()
		px.Cut() // both sides reset, as a dead link or a restarting proxy does
		px.Heal()
		// The node is back within its window; the check ends without a
		// verdict (finish counts any dead event as false).
		s.awaitChecked(checked)
		s.heardSince(id, cut)
		n.stop(5 * time.Second)
		px.Close()
		res.trials++
	}
	s.noteCounters("")
}

func fastServerKilled(h *harness, t *testing.T, res *result) {
	for i := range *trials {
		t.Run(fmt.Sprintf("trial-%d", i), func(t *testing.T) {
			s := h.scenario(t, res)
			defer s.finish()
			ports, servers := s.cluster3()
			s.monitorHTTP(natsURL(ports[0]))
			var onVictim []string
			for k := range 6 {
				id := fmt.Sprintf("n%d-on-%d", k, k%3)
				s.node(id, natsURL(ports[k%3]))
				s.alive(time.Time{}, id)
				if k%3 == 2 {
					onVictim = append(onVictim, id)
				}
			}
			s.phase()
			// Alternate a crash of the server (no advisories) with a
			// shutdown (it may close its clients with advisories first).
			killed, how := time.Now(), "SIGKILL"
			if i%2 == 0 {
				servers[2].kill()
			} else {
				how = "SIGTERM"
				servers[2].stop(10 * time.Second)
			}
			for _, id := range onVictim {
				s.heardSince(id, killed)
			}
			s.pause(2 * h.timeout)
			res.trials++
			s.noteCounters(fmt.Sprintf("trial %d (%s)", i, how))
		})
	}
}

func fastRestart(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	port := freePort(t)
	srv := s.server("nats", port, 0, nil)
	url := natsURL(port)
	s.monitorHTTP(url)
	s.alive(time.Time{}, s.bystanders(url, 4)...)
	observe := 4 * h.timeout
	for i := range *trials {
		canary := fmt.Sprintf("canary-%d", i)
		c := s.node(canary, url)
		s.alive(time.Time{}, canary)
		s.phase()
		srv.stop(10 * time.Second) // SIGTERM: the server closes every client
		srv = s.server("nats", port, 0, nil)
		s.pause(observe)
		// The canary lived through the restart; its death, now, must
		// still be noticed (by the fast path once the monitor settled).
		at := s.faultNow(canary)
		c.kill()
		s.expectDeath(canary, at, true)
		res.trials++
	}
	s.noteCounters("")
	res.notes = append(res.notes, fmt.Sprintf("observed %v after each restart", observe))
}

// kick closes the connection of node id on the server at url, as
// `nats server request kick` does: a system account request with the
// connection's id, found by its name in the server's /connz.
func (s *sc) kick(url string, httpPort int, id string) {
	s.t.Helper()
	var connz struct {
		ServerID    string `json:"server_id"`
		Connections []struct {
			CID  uint64 `json:"cid"`
			Name string `json:"name"`
		} `json:"connections"`
	}
	if _, err := get(httpPort, "/connz?acc="+embedded.DefaultMeshAccount+"&limit=10000", &connz); err != nil {
		s.t.Fatalf("connz: %v", err)
	}
	var cid uint64
	for _, c := range connz.Connections {
		if nc, err := wire.ParseNodeConn(c.Name); err == nil && nc.ID == id {
			cid = c.CID
		}
	}
	if cid == 0 {
		s.t.Fatalf("no connection of %s in /connz", id)
	}
	sys, err := nats.Connect(url, nats.UserInfo(sysUser, sysPassword))
	if err != nil {
		s.t.Fatalf("connect as the system user: %v", err)
	}
	defer sys.Close()
	reply, err := sys.Request(fmt.Sprintf("$SYS.REQ.SERVER.%s.KICK", connz.ServerID), []byte(fmt.Sprintf(`{"cid":%d}`, cid)), 5*time.Second)
	if err != nil {
		s.t.Fatalf("kick %s (cid %d): %v", id, cid, err)
	}
	if strings.Contains(string(reply.Data), `"error"`) {
		s.t.Fatalf("kick %s (cid %d): %s", id, cid, reply.Data)
	}
}

func fastKick(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	url, httpPort := s.confServer(meshConf(t, ""))
	s.monitorHTTP(url)
	s.alive(time.Time{}, s.bystanders(url, 2)...)
	for i := range *trials {
		id := fmt.Sprintf("kicked-%d", i)
		n := s.victim(id, url)
		checked := s.checked()
		at := time.Now()
		s.kick(url, httpPort, id)
		s.awaitChecked(checked)
		s.heardSince(id, at)
		n.stop(5 * time.Second)
		res.trials++
	}
	s.noteCounters("")
}

func fastSlowConsumer(h *harness, t *testing.T, res *result) {
	const maxPending = 256 << 10
	s := h.scenario(t, res)
	defer s.finish()
	url, httpPort := s.confServer(meshConf(t, fmt.Sprintf("max_pending: %d\nmax_payload: %d", maxPending, 64<<10)))
	s.monitorHTTP(url)
	s.alive(time.Time{}, s.bystanders(url, 2)...)
	flood, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	big := make([]byte, 60<<10)
	for i := range *trials {
		id := fmt.Sprintf("slow-%d", i)
		n := s.victim(id, url)
		ignored := s.metric("hbmesh_disconnect_advisories_total", `result="reason"`)
		var varz struct {
			SlowConsumers int64 `json:"slow_consumers"`
		}
		if _, err := get(httpPort, "/varz", &varz); err != nil {
			t.Fatal(err)
		}
		before := varz.SlowConsumers
		// Stopped, the node reads nothing: its socket buffers fill, then
		// the server's pending bytes for it, and the server closes it.
		n.signal(syscall.SIGSTOP)
		probe := wire.MustSubjects(wire.DefaultPrefix).Probe(id)
		stopped := time.Now()
		for varz.SlowConsumers == before && time.Since(stopped) < h.timeout {
			for range 20 {
				if err := flood.Publish(probe, big); err != nil {
					t.Fatal(err)
				}
			}
			if err := flood.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := get(httpPort, "/varz", &varz); err != nil {
				t.Fatal(err)
			}
		}
		cont := time.Now()
		n.signal(syscall.SIGCONT)
		if varz.SlowConsumers == before {
			res.problem("%s was not disconnected as a slow consumer", id)
		}
		res.notes = append(res.notes, fmt.Sprintf("%s stopped %v", id, cont.Sub(stopped).Round(time.Millisecond)))
		// The advisory ("Slow Consumer (Pending Bytes)") leaves the node
		// to the timeout path; it reconnects and beats on.
		s.awaitMetric("hbmesh_disconnect_advisories_total", `result="reason"`, ignored+1)
		s.heardSince(id, cont)
		n.stop(5 * time.Second)
		res.trials++
	}
	s.noteCounters("")
}

func fastClusterKill(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	ports, _ := s.cluster3()
	s.monitorHTTP(natsURL(ports[0]))
	s.alive(time.Time{}, s.bystanders(natsURL(ports[1]), 2)...)
	for i := range *trials {
		id := fmt.Sprintf("kill-%d", i)
		n := s.victim(id, natsURL(ports[1+i%2])) // never the monitor's server
		at := s.faultNow(id)
		n.kill()
		// The timeout path would convict it too, later: only the fast
		// path's verdict counts here, or the crash was missed by it.
		if ev, ok := s.expectDeath(id, at, true); ok && ev.Reason != monitor.ReasonDisconnected {
			res.missed++
			res.problem("%s dead by %s, not by the crash fast path (%s): %v", id, ev.Reason, monitor.ReasonDisconnected, ev)
		}
		res.trials++
	}
	s.noteCounters("")
}
