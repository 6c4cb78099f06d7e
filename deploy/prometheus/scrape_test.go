package prometheus_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestScrapePorts: prometheus.yml scrapes each job on the port that
// docs/DEPLOY.md tells its processes to serve /metrics on with
// HBMESH_METRICS_ADDR, not on the monitor unit's loopback HBMESH_HTTP.
func TestScrapePorts(t *testing.T) {
	cfg, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	deploy, err := os.ReadFile("../../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hbmesh": "9464", "hbmesh-notify": "9465"}
	for job, port := range want {
		if !strings.Contains(string(deploy), "`HBMESH_METRICS_ADDR=0.0.0.0:"+port+"`") && !strings.Contains(string(deploy), "`0.0.0.0:"+port+"`") {
			t.Errorf("DEPLOY.md does not set HBMESH_METRICS_ADDR to 0.0.0.0:%s, the port of job %s", port, job)
		}
	}
	jobName := regexp.MustCompile(`^\s*- job_name: (\S+)`)
	target := regexp.MustCompile(`'[^':]+:(\d+)'`)
	job, seen := "", map[string]int{}
	for _, line := range strings.Split(string(cfg), "\n") {
		if m := jobName.FindStringSubmatch(line); m != nil {
			job = m[1]
			continue
		}
		if !strings.Contains(line, "targets:") || job == "" {
			continue
		}
		for _, m := range target.FindAllStringSubmatch(line, -1) {
			seen[job]++
			if m[1] != want[job] {
				t.Errorf("job %s scrapes %s, want port %s", job, m[0], want[job])
			}
		}
	}
	for job := range want {
		if seen[job] == 0 {
			t.Errorf("prometheus.yml has no targets in job %s", job)
		}
	}
}
