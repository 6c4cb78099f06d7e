package node_test

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := node.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	manyLabels := map[string]string{}
	for i := range wire.MaxLabels + 1 {
		manyLabels[strings.Repeat("k", i+1)] = "v"
	}
	tests := []struct {
		name    string
		mod     func(*node.Config)
		want    string // substring of the error; "" means valid
		wrapsID bool
	}{
		{"defaults", func(*node.Config) {}, "", false},
		{"min interval", func(c *node.Config) { c.Interval = node.MinInterval }, "", false},
		{"max interval", func(c *node.Config) { c.Interval = node.MaxInterval }, "", false},
		{"no jitter", func(c *node.Config) { c.Jitter = 0 }, "", false},
		{"max jitter", func(c *node.Config) { c.Jitter = node.MaxJitter }, "", false},
		{"interval too short", func(c *node.Config) { c.Interval = 50 * time.Millisecond }, "invalid node config: Interval 50ms is below the minimum 100ms", false},
		{"interval zero", func(c *node.Config) { c.Interval = 0 }, "invalid node config: Interval 0s is below the minimum 100ms", false},
		{"interval too long", func(c *node.Config) { c.Interval = 2 * time.Hour }, "invalid node config: Interval 2h0m0s is above the maximum 1h0m0s", false},
		{"negative jitter", func(c *node.Config) { c.Jitter = -0.1 }, "invalid node config: Jitter -0.1 must be within [0, 0.2]", false},
		{"jitter too big", func(c *node.Config) { c.Jitter = 0.5 }, "invalid node config: Jitter 0.5 must be within [0, 0.2]", false},
		{"jitter NaN", func(c *node.Config) { c.Jitter = math.NaN() }, "invalid node config: Jitter NaN", false},
		{"dotted id", func(c *node.Config) { c.ID = "a.b" }, `invalid node config: ID: invalid id "a.b": contains '.'`, true},
		{"empty id", func(c *node.Config) { c.ID = "" }, `invalid node config: ID: invalid id "": empty`, true},
		{"wildcard id", func(c *node.Config) { c.ID = "a*" }, `invalid node config: ID: invalid id "a*": contains wildcard`, true},
		{"long id", func(c *node.Config) { c.ID = strings.Repeat("x", wire.MaxIDLen+1) }, "longer than 64 bytes", true},
		{"bad label key", func(c *node.Config) { c.Labels = map[string]string{"a b": "x"} }, `invalid node config: Labels: label key "a b"`, false},
		{"too many labels", func(c *node.Config) { c.Labels = manyLabels }, "invalid node config: Labels: 17 labels, at most 16 allowed", false},
		{"bad prefix", func(c *node.Config) { c.Prefix = "hb..x" }, `invalid node config: Prefix: invalid prefix "hb..x"`, false},
		{"long host", func(c *node.Config) { c.Host = strings.Repeat("h", wire.MaxHostLen+1) }, "invalid node config: Host", false},
		{"long version", func(c *node.Config) { c.Version = strings.Repeat("v", wire.MaxVersionLen+1) }, "invalid node config: Version", false},
		{"long boot", func(c *node.Config) { c.Boot = strings.Repeat("b", wire.MaxBootLen+1) }, "invalid node config: Boot", false},
		{"negative pid", func(c *node.Config) { c.PID = -1 }, "invalid node config: PID -1", false},
		{"too big together", func(c *node.Config) {
			c.Host = strings.Repeat("h", wire.MaxHostLen)
			c.ID = strings.Repeat("i", wire.MaxIDLen)
			c.Boot = strings.Repeat("b", wire.MaxBootLen)
			c.Version = strings.Repeat("v", wire.MaxVersionLen)
			c.Labels = map[string]string{}
			for i := range 6 {
				c.Labels[strings.Repeat("k", i+1)] = strings.Repeat("v", wire.MaxLabelValueLen)
			}
		}, "invalid node config: Labels make the beat", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := node.DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
			if !errors.Is(err, node.ErrInvalidConfig) {
				t.Errorf("%v does not match node.ErrInvalidConfig", err)
			}
			if got := errors.Is(err, wire.ErrInvalidID); got != tt.wrapsID {
				t.Errorf("errors.Is(err, wire.ErrInvalidID) = %v, want %v", got, tt.wrapsID)
			}
		})
	}
}

// New fills zero fields before validating, so a sparse Config works and
// an empty ID is derived rather than refused.
func TestNewDefaults(t *testing.T) {
	nc := &nats.Conn{} // New does no I/O, so an unconnected Conn is enough
	n, err := node.New(nc, node.Config{Host: "web-1.example.com"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := n.ID(), "web-1_example_com"; got != want {
		t.Errorf("ID() = %q, want %q", got, want)
	}
	if n.Seq() != 0 {
		t.Errorf("Seq() before Run = %d, want 0", n.Seq())
	}
	if _, err := node.New(nc, node.Config{ID: "a.b"}); !errors.Is(err, wire.ErrInvalidID) {
		t.Errorf("New with id a.b: err = %v, want wire.ErrInvalidID", err)
	}
	if _, err := node.New(nil, node.DefaultConfig()); err == nil {
		t.Error("New(nil conn) succeeded")
	}
}

func TestBootIsFreshPerNode(t *testing.T) {
	nc := &nats.Conn{}
	a, err := node.New(nc, node.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := node.New(nc, node.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, boot := range []string{a.Boot(), b.Boot()} {
		if raw, err := base64.RawURLEncoding.DecodeString(boot); err != nil || len(raw) != 8 || len(boot) != 11 {
			t.Errorf("Boot() = %q, want 64 bits as 11 base64url characters (%v)", boot, err)
		}
	}
	if a.Boot() == b.Boot() {
		t.Errorf("two nodes share boot %q", a.Boot())
	}
}
