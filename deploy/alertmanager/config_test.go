// Package alertmanager_test checks the example Alertmanager configuration
// in deploy/alertmanager with the real amtool: it loads, and it routes
// hbmesh's alerts where its comments say.
package alertmanager_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/promtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAlertmanagerConfig(t *testing.T) {
	out, ok := promtest.Amtool(t, "check-config", "alertmanager.yml")
	if !ok || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config:\n%s", out)
	}
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=HbmeshPeerDead", "peer=web-1", "cluster=prod", "severity=page"}, "pagerduty,slack"},
		{[]string{"alertname=HbmeshPeerDead", "peer=web-1", "cluster=staging", "severity=page"}, "slack"},
		{[]string{"alertname=HbmeshMonitorsDisagree", "cluster=prod", "severity=warn"}, "slack"},
	} {
		out, ok := promtest.Amtool(t, append([]string{"config", "routes", "test", "--config.file=alertmanager.yml"}, tc.labels...)...)
		// amtool also warns that --config.file overrides its URL.
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, "Warning:") {
				got = append(got, l)
			}
		}
		if !ok || strings.Join(got, "\n") != tc.want {
			t.Errorf("%v routed to %q, want %q:\n%s", tc.labels, got, tc.want, out)
		}
	}
}
