package httpapi_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAlertRules checks deploy/prometheus/hbmesh-alerts.yml against the
// metrics served here: every hbmesh_ metric a rule names exists, and the
// rejected-beats rule leaves out probe_unsolicited, which OPERATIONS calls
// harmless. (promtool is not a test dependency; this reads the file as
// text.)
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/hbmesh-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{} // alert -> expr
	var alert string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(line, "- alert: "); ok {
			alert = a
		}
		if e, ok := strings.CutPrefix(line, "expr: "); ok {
			exprs[alert] = e
		}
	}
	known := map[string]bool{}
	for _, n := range metricNames {
		known[n] = true
	}
	// Exported only when an event output is configured, so not in
	// metricNames; TestMetricsEventOutputs scrapes it.
	known["hbmesh_event_outputs_total"] = true
	for a, e := range exprs {
		for _, m := range regexp.MustCompile(`hbmesh_[a-z_]+`).FindAllString(e, -1) {
			if !known[m] {
				t.Errorf("%s: unknown metric %s in %s", a, m, e)
			}
		}
	}
	e, ok := exprs["HbmeshBeatsRejected"]
	if !ok {
		t.Fatalf("no HbmeshBeatsRejected rule among %v", exprs)
	}
	if !strings.Contains(e, `hbmesh_beats_rejected_total{reason!="probe_unsolicited"}`) {
		t.Errorf("HbmeshBeatsRejected counts probe_unsolicited: %s", e)
	}
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), e) {
		t.Errorf("docs/OPERATIONS.md does not quote the rule as it is: %s", e)
	}
}
