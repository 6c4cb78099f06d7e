package node_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func TestReconnectWindow(t *testing.T) {
	base := func() nats.Options {
		o := nats.GetDefaultOptions()
		o.ReconnectWait, o.ReconnectJitter, o.ReconnectJitterTLS = 250*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond
		return o
	}
	for _, tc := range []struct {
		name string
		mod  func(*nats.Options)
		want time.Duration
		ok   bool
	}{
		{"plain", func(*nats.Options) {}, 350 * time.Millisecond, true},
		{"TLS config", func(o *nats.Options) { o.TLSConfig = &tls.Config{} }, 750 * time.Millisecond, true},
		{"secure", func(o *nats.Options) { o.Secure = true }, 750 * time.Millisecond, true},
		{"tls URL", func(o *nats.Options) { o.Servers = []string{"nats://a:4222", "tls://b:4222"} }, 750 * time.Millisecond, true},
		{"tls URL list", func(o *nats.Options) { o.Url = "nats://a:4222, tls://b:4222" }, 750 * time.Millisecond, true},
		{"nats.go defaults", func(o *nats.Options) { *o = nats.GetDefaultOptions() }, nats.DefaultReconnectWait + nats.DefaultReconnectJitter, true},
		{"custom delays", func(o *nats.Options) { o.CustomReconnectDelayCB = func(int) time.Duration { return time.Second } }, 0, false},
		// nats.go sleeps whatever the chooser says before each server it
		// picks, instead of ReconnectWait and jitter.
		{"server chooser", func(o *nats.Options) {
			o.ReconnectToServerCB = func(s []nats.Server, _ nats.ServerInfo) (*nats.Server, time.Duration) { return &s[0], 5 * time.Second }
		}, 0, false},
	} {
		o := base()
		tc.mod(&o)
		got, ok := node.ReconnectWindow(&o)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: ReconnectWindow = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func nodeName(t *testing.T, id string, window time.Duration) string {
	t.Helper()
	name, err := wire.NodeConn{Prefix: wire.DefaultPrefix, ID: id, Reconnect: window}.Name()
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// TestConnNameChecked: New refuses a connection whose name announces
// another node, a reconnect window shorter than the connection's own, or
// one that cannot be checked because the connection's delays are custom.
func TestConnNameChecked(t *testing.T) {
	url := startServer(t)
	policy := []nats.Option{nats.ReconnectWait(250 * time.Millisecond), nats.ReconnectJitter(100*time.Millisecond, 500*time.Millisecond)}
	custom := nats.CustomReconnectDelay(func(int) time.Duration { return time.Second })
	chooser := nats.ReconnectToServer(func(s []nats.Server, _ nats.ServerInfo) (*nats.Server, time.Duration) { return &s[0], time.Second })
	for _, tc := range []struct {
		name string
		opts []nats.Option
		bad  string
	}{
		{"announced", []nats.Option{nats.Name(nodeName(t, "n1", 350*time.Millisecond))}, ""},
		{"longer window", []nats.Option{nats.Name(nodeName(t, "n1", time.Second))}, ""},
		{"not a node's name", []nats.Option{nats.Name("my service")}, ""},
		{"no reconnects", []nats.Option{nats.Name(nodeName(t, "n1", 0)), nats.NoReconnect()}, ""},
		// Custom delays cannot be checked against the window: such a
		// connection must not announce one, unless it never reconnects.
		{"custom delays", []nats.Option{nats.Name(nodeName(t, "n1", time.Hour)), custom}, "reconnect delays are its own"},
		{"server chooser", []nats.Option{nats.Name(nodeName(t, "n1", time.Hour)), chooser}, "reconnect delays are its own"},
		{"custom delays, not announced", []nats.Option{nats.Name("my service"), custom, chooser}, ""},
		{"custom delays, no reconnects", []nats.Option{nats.Name(nodeName(t, "n1", 0)), custom, nats.NoReconnect()}, ""},
		{"short window", []nats.Option{nats.Name(nodeName(t, "n1", 349*time.Millisecond))}, "announces a reconnect window of 349ms, but the connection may wait 350ms"},
		{"other node", []nats.Option{nats.Name(nodeName(t, "n2", time.Second))}, "announces node n2 under prefix hb, not n1 under hb"},
		{"malformed", []nats.Option{nats.Name("hbmesh node n1 prefix=hb")}, "no reconnect"},
	} {
		nc := connect(t, url, append(policy, tc.opts...)...)
		cfg := node.DefaultConfig()
		cfg.ID = "n1"
		_, err := node.New(nc, cfg)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: New: %v", tc.name, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: New: %v, want an error containing %q", tc.name, err, tc.bad)
		}
	}
}
