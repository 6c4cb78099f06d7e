package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbmesh/hbmesh/internal/faultproxy"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

// browserDeadline bounds the whole browser test.
const browserDeadline = 60 * time.Second

// chromium returns the browser to drive: $CHROME_PATH, else chromium on
// $PATH.
func chromium(t *testing.T) string {
	t.Helper()
	return natstest.SystemTool(t, "chromium", "CHROME_PATH", "chromium", "chromium-browser")
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HBMESH_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// runNode starts a real node on its own connection; kill ends it without
// a goodbye, like a crash: its connection is closed first so the goodbye
// cannot be delivered, then it is cancelled and waited for.
func runNode(t *testing.T, url, id string, labels map[string]string) (kill func()) {
	t.Helper()
	nc := natstest.Connect(t, url)
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Host, cfg.Interval, cfg.Labels, cfg.Version = id, id+".test", 200*time.Millisecond, labels, "v0.9.0"
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Run(ctx) // ErrConnClosed after kill, by design
	}()
	stopped := false
	kill = func() {
		if stopped {
			return
		}
		stopped = true
		nc.Close()
		cancel()
		<-done
	}
	t.Cleanup(kill)
	return kill
}

// TestDashboardShowsDeathLive runs the dashboard in real headless Chromium
// against a real monitor watching real nodes on a real embedded
// nats-server, kills a node without goodbye and waits for the page to mark
// it dead with no reload.
func TestDashboardShowsDeathLive(t *testing.T) {
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserDeadline)
	defer cancel()

	ns := natstest.Start(t)
	mcfg := monitor.DefaultConfig()
	mcfg.ID = "mon-browser"
	var api *httpapi.Server
	mcfg.OnEvent = func(ev monitor.Event) { api.Publish(ev) } // api is set before Run
	mon, err := monitor.New(natstest.Connect(t, ns.ClientURL()), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	api, err = httpapi.New(httpapi.Config{Source: mon, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	monCtx, stopMon := context.WithCancel(context.Background())
	apiCtx, stopAPI := context.WithCancel(context.Background())
	monDone, apiDone := make(chan error, 1), make(chan error, 1)
	go func() { monDone <- mon.Run(monCtx) }()
	go func() { apiDone <- api.Serve(apiCtx, ln) }()
	var apiStopped bool
	shutdownAPI := func() {
		if apiStopped {
			return
		}
		apiStopped = true
		stopAPI()
		if err := <-apiDone; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(func() {
		shutdownAPI()
		stopMon()
		if err := <-monDone; err != nil {
			t.Errorf("monitor Run: %v", err)
		}
	})

	killB := func() {}
	for _, id := range []string{"node-a", "node-b", "node-c"} {
		k := runNode(t, ns.ClientURL(), id, map[string]string{"role": "web", "az": "eu-1"})
		if id == "node-b" {
			killB = k
		}
	}

	browser := newBrowser(t, ctx, chrome)

	dir := artifactsDir(t)
	shot := func(name string) {
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
			return
		}
		t.Logf("screenshot saved to %s", p)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			shot("dashboard-failure.png")
			t.Fatalf("%s: %v", what, err)
		}
	}

	url := "http://" + ln.Addr().String() + "/"
	_, err = chromedp.Run(browser, chromedp.Navigate(url))
	must("load "+url, err)
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`document.querySelectorAll('#rows tr[data-state="alive"]').length === 3`,
		chromedp.WithPollingTimeout(30*time.Second)))
	must("wait for 3 alive rows", err)
	marker, err := chromedp.Run(browser, chromedp.Evaluate[float64](`window.hbmeshLoadedAt`))
	must("read load marker", err)

	killB()
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`document.querySelector('#rows tr[data-id="node-b"]')?.dataset.state === "dead"`,
		chromedp.WithPollingTimeout(30*time.Second)))
	must("wait for node-b dead", err)
	again, err := chromedp.Run(browser, chromedp.Evaluate[float64](`window.hbmeshLoadedAt`))
	must("read load marker again", err)
	if again != marker || marker == 0 {
		t.Errorf("page reloaded: load marker %v, then %v", marker, again)
	}
	states, err := chromedp.Run(browser, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#rows tr')].map(r => r.dataset.id + "=" + r.dataset.state)`))
	must("read rows", err)
	if want := []string{"node-b=dead", "node-a=alive", "node-c=alive"}; fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v (worst first)", states, want)
	}
	// The badge names why the peer died, from the live event.
	why, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#rows tr[data-id="node-b"] .badge').title`))
	must("read the dead badge's title", err)
	if why != "dead: timeout" && why != "dead: disconnected" {
		t.Errorf("dead badge title %q, want the reason (timeout or disconnected)", why)
	}
	// Clicking a count shows only that state; clicking it again, all.
	clickDead := func() {
		_, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.querySelector('button.toggle[data-state="dead"]').click(), true`))
		must("click the dead count", err)
	}
	clickDead()
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`[...document.querySelectorAll('#rows tr')].map(r => r.dataset.id).join() === "node-b" &&
		 document.querySelector('button.toggle[data-state="alive"]').getAttribute('aria-pressed') === "false"`,
		chromedp.WithPollingTimeout(5*time.Second)))
	must("show only the dead", err)
	clickDead()
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`document.querySelectorAll('#rows tr').length === 3`, chromedp.WithPollingTimeout(5*time.Second)))
	must("show all again", err)
	hidden, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.getElementById('banner').hidden`))
	must("read banner", err)
	if !hidden {
		t.Error("disconnected banner shown while the monitor is connected")
	}
	// Let one periodic refresh land so the strips show real history.
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`document.querySelectorAll('#rows tr').length === 3 && document.querySelector('#rows tr[data-id="node-a"] td.num').textContent.endsWith("ago")`,
		chromedp.WithPollingTimeout(10*time.Second)))
	must("wait for ages", err)
	// An alive peer makes no transitions, yet its row follows its beats:
	// the periodic refresh (every second for a table this small) brings
	// its new seq and strip, still without a reload.
	seq0, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#rows tr[data-id="node-a"]').dataset.seq`))
	must("read node-a's seq", err)
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		fmt.Sprintf(`Number(document.querySelector('#rows tr[data-id="node-a"]')?.dataset.seq) > %s`, seq0),
		chromedp.WithPollingTimeout(15*time.Second)))
	must("wait for node-a's row to show newer beats", err)
	if again, _ := chromedp.Run(browser, chromedp.Evaluate[float64](`window.hbmeshLoadedAt`)); again != marker {
		t.Errorf("page reloaded: load marker %v, then %v", marker, again)
	}
	shot("dashboard.png")

	// An alert's generatorURL, /?q=<peer>, opens the page filtered to it.
	_, err = chromedp.Run(browser, chromedp.Navigate(url+"?q=node-b"))
	must("load "+url+"?q=node-b", err)
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`document.getElementById('filter').value === "node-b" &&
		 [...document.querySelectorAll('#rows tr')].map(r => r.dataset.id).join() === "node-b"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	must("open the page filtered to node-b", err)

	// When the page loses the monitor, the red banner must say so.
	shutdownAPI()
	banner, err := chromedp.Run(browser, chromedp.Poll[string](
		`!document.getElementById('banner').hidden && document.getElementById('banner').textContent`,
		chromedp.WithPollingTimeout(15*time.Second)))
	must("wait for the disconnected banner", err)
	t.Logf("banner: %s", banner)
	shot("dashboard-disconnected.png")

}

// newBrowser starts headless Chromium, closed when the test ends.
func newBrowser(t *testing.T, ctx context.Context, chrome string) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // containers often run as root, where the sandbox refuses to start
		chromedp.WindowSize(1280, 720),
	)...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		if err := chromedp.Cancel(browser); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing the browser: %v", err)
		}
		cancelBrowser()
		cancelAlloc()
	})
	return browser
}

// TestDashboardTenThousandPeers checks the page stays cheap with a big
// fleet: it asks the monitor only for the first 500 rows that match its
// filter (gzipped), says "showing N of M" with M counted by the monitor,
// shows exact counts, narrows through the monitor when filtered, and
// renders untrusted ids as text.
func TestDashboardTenThousandPeers(t *testing.T) {
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserDeadline)
	defer cancel()
	src := newFake(10000, monitor.PeerInfo{ID: "evil", Host: "<img src=x onerror=window.pwned=1>", State: monitor.StateDead,
		Labels: map[string]string{"x": "<b>bold</b>"}})
	api, _ := newServer(t, src, func(c *httpapi.Config) { c.Now = time.Now })
	var mu sync.Mutex
	var asked []string // every request URI the page made
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RequestURI())
		mu.Unlock()
		api.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	browser := newBrowser(t, ctx, chrome)
	poll := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(browser, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			state, _ := chromedp.Run(browser, chromedp.Evaluate[string](
				`document.getElementById('shown').textContent + " | " + document.getElementById('more').textContent + " | rows " + document.querySelectorAll('#rows tr').length`))
			t.Fatalf("%s: %v (page: %s)", what, err, state)
		}
	}
	const hint = `(!document.getElementById('more').hidden && document.getElementById('more').textContent)`
	const shown = `document.getElementById('shown').textContent`
	const rowCount = `document.querySelectorAll('#rows tr').length`
	const firstID = `document.querySelector('#rows tr')?.dataset.id`

	if _, err := chromedp.Run(browser, chromedp.Navigate(ts.URL+"/")); err != nil {
		t.Fatal(err)
	}
	poll("the first 500 of 10001, counted by the monitor",
		hint+` === "showing 500 of 10001 — filter to narrow" && `+shown+` === "10001 of 10001 peers" && `+rowCount+` === 500 &&
		 document.querySelector('[data-count="alive"]').textContent === "10000" && document.querySelector('[data-count="dead"]').textContent === "1"`)
	first, err := chromedp.Run(browser, chromedp.Evaluate[[]string](
		`(() => { const r = document.querySelector('#rows tr'); return [r.dataset.id, r.dataset.state, r.children[1].textContent, String(!!window.pwned), String(document.querySelectorAll('#rows img, #rows b').length)]; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evil", "dead", "<img src=x onerror=window.pwned=1>", "false", "0"}; fmt.Sprint(first) != fmt.Sprint(want) {
		t.Errorf("first row %q, want %q", first, want)
	}

	// A count asks the monitor for that state alone, and again for all.
	clickDead := `document.querySelector('button.toggle[data-state="dead"]').click(), true`
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](clickDead)); err != nil {
		t.Fatal(err)
	}
	poll("only the dead", rowCount+` === 1 && `+firstID+` === "evil" && `+shown+` === "1 of 10001 peers" && document.getElementById('more').hidden`)
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](clickDead)); err != nil {
		t.Fatal(err)
	}
	poll("all again", hint+` === "showing 500 of 10001 — filter to narrow" && `+rowCount+` === 500`)

	// A filter matching 1000 peers: the page never holds them, so M can
	// only come from the monitor.
	if _, err := chromedp.Run(browser, chromedp.SendKeys("#filter", "p1")); err != nil {
		t.Fatal(err)
	}
	poll("p1 narrowed by the monitor", hint+` === "showing 500 of 1000 — filter to narrow" && `+shown+` === "1000 of 10001 peers" && `+
		rowCount+` === 500 && `+firstID+` === "p1000"`)
	if png, err := chromedp.Run(browser, chromedp.CaptureScreenshot()); err == nil { // the viewport: 500 rows are too tall to look at
		p := filepath.Join(artifactsDir(t), "dashboard-10k.png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		}
		t.Logf("screenshot saved to %s", p)
	}
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.getElementById('filter').value = "", true`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(browser, chromedp.SendKeys("#filter", "p0999")); err != nil {
		t.Fatal(err)
	}
	poll("p0999 alone", rowCount+` === 1 && `+firstID+` === "p0999" && document.getElementById('more').hidden && `+shown+` === "1 of 10001 peers"`)

	// What crossed the wire: never the whole table, and gzipped.
	mu.Lock()
	uris := slices.Clone(asked)
	mu.Unlock()
	var lists int
	for _, u := range uris {
		switch {
		case strings.HasPrefix(u, "/api/peers"):
			lists++
			if !strings.HasPrefix(u, "/api/peers?limit=500") {
				t.Errorf("the page asked for %s, not the first 500 rows", u)
			}
		case strings.HasPrefix(u, "/api/events") && u != "/api/events?limit=1000":
			t.Errorf("the page opened %s, want a snapshot of at most 1000 peers", u)
		}
	}
	for _, want := range []string{"/api/peers?limit=500", "/api/peers?limit=500&state=dead", "/api/peers?limit=500&q=p1", "/api/peers?limit=500&q=p0999"} {
		if !slices.Contains(uris, want) {
			t.Errorf("the page never asked for %s (asked %d lists)", want, lists)
		}
	}
	sizes, err := chromedp.Run(browser, chromedp.Evaluate[[][]float64](
		`performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/peers?limit=500')).map(e => [e.encodedBodySize, e.decodedBodySize])`))
	if err != nil || len(sizes) == 0 {
		t.Fatalf("resource timing of /api/peers?limit=500: %v %v", sizes, err)
	}
	if enc, dec := sizes[0][0], sizes[0][1]; enc <= 0 || enc*3 > dec {
		t.Errorf("500 rows crossed as %v bytes for %v decoded: not gzipped", enc, dec)
	} else {
		t.Logf("500 rows: %v bytes on the wire, %v decoded", enc, dec)
	}
}

// TestDashboardReconnectsAfterHTTPError: a browser's EventSource gives up
// for good after an HTTP error, here the 503 of a full stream limit (a
// proxy's 502 during a monitor restart is the same). The page must say it
// has lost the monitor, dim the table, and open a new stream itself once
// one is allowed.
func TestDashboardReconnectsAfterHTTPError(t *testing.T) {
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*browserDeadline)
	defer cancel()

	natsURL, apiAddr := serveMonitor(t, "mon-503", func(c *httpapi.Config) { c.MaxSSEClients = 1 })
	runNode(t, natsURL, "node-a", nil)
	base := "http://" + apiAddr + "/"

	// Take the one stream slot.
	holdCtx, release := context.WithCancel(ctx)
	defer release()
	req, err := http.NewRequestWithContext(holdCtx, http.MethodGet, base+"api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("holding the stream slot: %v %v", resp, err)
	}
	defer resp.Body.Close()

	browser := newBrowser(t, ctx, chrome)
	_, err = chromedp.Run(browser, chromedp.Navigate(base))
	if err != nil {
		t.Fatal(err)
	}
	banner, err := chromedp.Run(browser, chromedp.Poll[string](
		`document.getElementById('live').textContent === 'offline' && document.body.classList.contains('stale') &&
		 !document.getElementById('banner').hidden && document.getElementById('banner').textContent`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("wait for the page to say it lost the stream: %v", err)
	}
	if !strings.Contains(banner, "dashboard cannot reach the monitor") {
		t.Errorf("banner %q does not say the page lost the monitor", banner)
	}

	release() // the slot is free again
	_, err = chromedp.Run(browser, chromedp.Poll[bool](
		`document.getElementById('live').textContent === 'live' && document.getElementById('banner').hidden &&
		 !document.body.classList.contains('stale') && document.querySelectorAll('#rows tr[data-id="node-a"]').length === 1`,
		chromedp.WithPollingTimeout(40*time.Second)))
	if err != nil {
		t.Fatalf("the page did not reconnect once the stream was allowed again: %v", err)
	}
}

// TestDashboardNoticesAHungMonitor: a monitor that stops answering without
// closing anything (SIGSTOP, a hung process, a black-holed path) leaves
// the page's stream open and silent. The page must notice from the
// silence, say it has lost the monitor, and come back when it answers.
func TestDashboardNoticesAHungMonitor(t *testing.T) {
	chrome := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*browserDeadline)
	defer cancel()

	natsURL, apiAddr := serveMonitor(t, "mon-hung", nil)
	px, err := faultproxy.New("127.0.0.1:0", apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Heal(); px.Close() })
	runNode(t, natsURL, "node-a", nil)

	browser := newBrowser(t, ctx, chrome)
	if _, err := chromedp.Run(browser, chromedp.Navigate("http://"+px.Addr()+"/")); err != nil {
		t.Fatal(err)
	}
	const live = `document.getElementById('live').textContent === 'live' && document.getElementById('banner').hidden &&
		!document.body.classList.contains('stale') && document.querySelectorAll('#rows tr[data-id="node-a"]').length === 1`
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](live, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("wait for the live page: %v", err)
	}

	px.Blackhole()
	banner, err := chromedp.Run(browser, chromedp.Poll[string](
		`document.getElementById('live').textContent === 'offline' && document.body.classList.contains('stale') &&
		 !document.getElementById('banner').hidden && document.getElementById('banner').textContent`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("the page kept showing a hung monitor as live: %v", err)
	}
	if !strings.Contains(banner, "dashboard cannot reach the monitor") {
		t.Errorf("banner %q does not say the page lost the monitor", banner)
	}

	px.Heal()
	if _, err := chromedp.Run(browser, chromedp.Poll[bool](live, chromedp.WithPollingTimeout(40*time.Second))); err != nil {
		t.Fatalf("the page did not come back once the monitor answered again: %v", err)
	}
}

// serveMonitor runs a real monitor on a fresh server, with its HTTP API on
// a loopback listener, until the test ends, and returns the server's
// client URL and the API's address.
func serveMonitor(t *testing.T, id string, mod func(*httpapi.Config)) (natsURL, apiAddr string) {
	t.Helper()
	ns := natstest.Start(t)
	mcfg := monitor.DefaultConfig()
	mcfg.ID = id
	mon, err := monitor.New(natstest.Connect(t, ns.ClientURL()), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	hcfg := httpapi.Config{Source: mon, Version: "test"}
	if mod != nil {
		mod(&hcfg)
	}
	api, err := httpapi.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	monDone, apiDone := make(chan error, 1), make(chan error, 1)
	go func() { monDone <- mon.Run(runCtx) }()
	go func() { apiDone <- api.Serve(runCtx, ln) }()
	t.Cleanup(func() {
		stop()
		for _, ch := range []chan error{apiDone, monDone} {
			if err := <-ch; err != nil {
				t.Errorf("%v", err)
			}
		}
	})
	return ns.ClientURL(), ln.Addr().String()
}
