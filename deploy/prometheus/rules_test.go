// Package prometheus_test checks the Prometheus files shipped in
// deploy/prometheus with the real promtool: the alert rules load, their
// unit tests (hbmesh-alerts_test.yml, synthetic series) pass, and the
// example configuration is valid.
package prometheus_test

import (
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/promtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPromtool(t *testing.T) {
	abs := func(name string) string {
		p, err := filepath.Abs(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the output on success
	}{
		{"check rules", []string{"check", "rules", abs("hbmesh-alerts.yml")}, "SUCCESS: 12 rules found"},
		{"test rules", []string{"test", "rules", abs("hbmesh-alerts_test.yml")}, "SUCCESS"},
		{"check config", []string{"check", "config", abs("prometheus.yml")}, "SUCCESS: 1 rule files found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := promtest.Promtool(t, nil, tc.args...)
			if !ok || !strings.Contains(out, tc.want) {
				t.Fatalf("promtool %s (exit 0: %v):\n%s", strings.Join(tc.args, " "), ok, out)
			}
		})
	}
}
