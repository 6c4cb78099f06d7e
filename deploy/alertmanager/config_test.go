// Package alertmanager_test checks the example Alertmanager configuration
// in deploy/alertmanager with the real amtool and Alertmanager: it loads,
// and it routes and inhibits the alerts the shipped pieces send as its
// comments say.
package alertmanager_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/promtest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readYAML decodes the YAML file path into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// ruleAlerts returns the label sets Prometheus sends Alertmanager for
// deploy/prometheus's rules: every alert their unit tests expect (which
// promtool checks against the rules), with its alertname and the
// external_labels of prometheus.yml. Every rule must be among them.
func ruleAlerts(t *testing.T) []map[string]string {
	t.Helper()
	dir := filepath.Join("..", "prometheus")
	var prom struct {
		Global struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		}
	}
	readYAML(t, filepath.Join(dir, "prometheus.yml"), &prom)
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert string }
		}
	}
	readYAML(t, filepath.Join(dir, "hbmesh-alerts.yml"), &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	readYAML(t, filepath.Join(dir, "hbmesh-alerts_test.yml"), &tests)

	seen := map[string]bool{}
	var out []map[string]string
	for _, tc := range tests.Tests {
		for _, rt := range tc.AlertRuleTest {
			for _, a := range rt.ExpAlerts {
				l := maps.Clone(a.ExpLabels)
				l["alertname"] = rt.Alertname
				maps.Copy(l, prom.Global.ExternalLabels)
				if k := key(l); !seen[k] {
					seen[k] = true
					out = append(out, l)
				}
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if !slices.ContainsFunc(out, func(l map[string]string) bool { return l["alertname"] == r.Alert }) {
				t.Errorf("hbmesh-alerts_test.yml expects no alert of %s: its labels are not checked here", r.Alert)
			}
		}
	}
	if len(prom.Global.ExternalLabels) == 0 {
		t.Error("prometheus.yml sets no external_labels")
	}
	return out
}

// alertLabelFlag is one --alert-label of a command line example.
var alertLabelFlag = regexp.MustCompile(`--alert-label[ =]([A-Za-z_][A-Za-z0-9_]*=[^\s"]+)`)

// senderAlerts returns the label sets `hbmesh monitor --alertmanager` and
// `hbmesh notify --alertmanager` send about a dead peer, as package
// events makes them, with the static labels of every shipped example:
// the commands' help examples and their environment files. It fails the
// test if an example with --alertmanager gives no label.
func senderAlerts(t *testing.T) map[string]map[string]string {
	t.Helper()
	examples := map[string][]string{} // where → KEY=VALUE
	for _, cmd := range []string{"monitor", "notify"} {
		file := filepath.Join("..", "..", "cmd", "hbmesh", cmd+".go")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `"hbmesh `+cmd+` `) || !strings.Contains(line, "--alertmanager") {
				continue
			}
			where := fmt.Sprintf("%s:%d", file, i+1)
			for _, m := range alertLabelFlag.FindAllStringSubmatch(line, -1) {
				examples[where] = append(examples[where], m[1])
			}
			if examples[where] == nil {
				t.Errorf("%s: an --alertmanager example without --alert-label", where)
			}
		}
		env := filepath.Join("..", "systemd", "hbmesh-"+cmd+".env")
		b, err = os.ReadFile(env)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "#HBMESH_ALERT_LABELS="); ok {
				where := fmt.Sprintf("%s:%d", env, i+1)
				examples[where] = strings.Split(v, ",")
			}
		}
	}
	ev := monitor.Event{Time: time.Now(), ID: "web-1", Host: "web-1.example", State: monitor.StateDead,
		Prev: monitor.StateSuspect, Reason: monitor.ReasonTimeout, Boot: "b1", Seq: 7, Interval: time.Second}
	out := map[string]map[string]string{}
	for where, kvs := range examples {
		static := map[string]string{}
		for _, kv := range kvs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || v == "" {
				t.Fatalf("%s: label %q is not KEY=VALUE", where, kv)
			}
			static[k] = v
		}
		if err := events.ValidateAlertLabels(static); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		out[where] = events.EventAlert(&ev, ev.Time, time.Hour, wire.DefaultPrefix, static, "mon-a", "").Labels
	}
	return out
}

// key is a label set as one comparable string.
func key(l map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(k + "=" + l[k] + "\x00")
	}
	return b.String()
}

// route returns the receivers alertmanager.yml routes labels to, as
// amtool says.
func route(t *testing.T, labels map[string]string) string {
	t.Helper()
	args := []string{"config", "routes", "test", "--config.file=alertmanager.yml"}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		args = append(args, k+"="+labels[k])
	}
	out, ok := promtest.Amtool(t, args...)
	// amtool also warns that --config.file overrides its URL.
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "Warning:") {
			got = append(got, l)
		}
	}
	if !ok {
		t.Fatalf("amtool %q:\n%s", args, out)
	}
	return strings.Join(got, "\n")
}

func TestAlertmanagerConfig(t *testing.T) {
	out, ok := promtest.Amtool(t, "check-config", "alertmanager.yml")
	if !ok || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config:\n%s", out)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "cluster": "prod", "severity": "page"}, "pagerduty,slack"},
		{map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "cluster": "staging", "severity": "page"}, "slack"},
		{map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "cluster": "prod"}, "slack"},
	} {
		if got := route(t, tc.labels); got != tc.want {
			t.Errorf("%v routed to %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// TestShippedAlertsRoute: the alerts the shipped pieces send, label for
// label, reach the receivers the configuration's comments promise. The
// rules' alerts of severity page page (PagerDuty, and Slack), those of
// severity warn reach Slack; the alerts of every shipped
// --alertmanager example page.
func TestShippedAlertsRoute(t *testing.T) {
	for _, l := range ruleAlerts(t) {
		want := map[string]string{"page": "pagerduty,slack", "warn": "slack"}[l["severity"]]
		if want == "" {
			t.Errorf("%s: severity %q, want page or warn", l["alertname"], l["severity"])
			continue
		}
		if got := route(t, l); got != want {
			t.Errorf("the rules' alert %v routed to %q, want %q", l, got, want)
		}
	}
	for where, l := range senderAlerts(t) {
		if got := route(t, l); got != "pagerduty,slack" {
			t.Errorf("%s: the alert %v routed to %q, want pagerduty,slack", where, l, got)
		}
	}
}

// TestShippedInhibition runs a real Alertmanager with alertmanager.yml
// and posts it the alerts the shipped pieces send, label for label: the
// rules' (from their unit tests, HbmeshManyPeersDead among them) and
// those of every --alertmanager example. An HbmeshPeerDead is inhibited
// when an HbmeshManyPeersDead of its cluster holds, and of its job for
// the rules' alerts, which have one; nothing else is.
func TestShippedInhibition(t *testing.T) {
	file, err := filepath.Abs("alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	am := promtest.Start(t, nil, promtest.Config{File: file})
	rules := ruleAlerts(t)
	all := slices.Clone(rules)
	for _, l := range senderAlerts(t) {
		all = append(all, l)
	}
	inhibited := func(l map[string]string) bool {
		if l["alertname"] != events.AlertName {
			return false
		}
		return slices.ContainsFunc(rules, func(src map[string]string) bool {
			return src["alertname"] == "HbmeshManyPeersDead" && src["cluster"] == l["cluster"] && (l["job"] == "" || src["job"] == l["job"])
		})
	}
	var posted []events.PostableAlert
	want := map[string]bool{} // by label set: inhibited
	n := 0
	for _, l := range all {
		if !want[key(l)] {
			want[key(l)] = inhibited(l)
			posted = append(posted, events.PostableAlert{Labels: l, StartsAt: time.Now().UTC(), EndsAt: time.Now().UTC().Add(time.Hour)})
			if want[key(l)] {
				n++
			}
		}
	}
	if n == 0 || n == len(posted) {
		t.Fatalf("%d of %d alerts would be inhibited: nothing tells inhibited from not", n, len(posted))
	}
	am.Post(t, posted)
	var wrong []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("still wrong:\n%s", strings.Join(wrong, "\n"))
		}
	})
	natstest.Eventually(t, "the Alertmanager to inhibit what it should", func() bool {
		got := am.AllAlerts(t)
		wrong = nil
		if len(got) != len(posted) {
			wrong = append(wrong, fmt.Sprintf("%d alerts held, %d posted", len(got), len(posted)))
		}
		for _, a := range got {
			if want[key(a.Labels)] != (len(a.Status.InhibitedBy) > 0) {
				wrong = append(wrong, fmt.Sprintf("%v: inhibited by %v, want inhibited %v", a.Labels, a.Status.InhibitedBy, want[key(a.Labels)]))
			}
		}
		return len(wrong) == 0
	})
}
