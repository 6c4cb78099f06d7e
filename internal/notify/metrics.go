package notify

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of [Notifier.Collector], read from the outputs' counters at
// scrape time. They are named as the monitor's are (internal/httpapi):
// hbmesh_, then the component, base units, counters ending in _total.
const (
	// mEvents counts events by output and by what became of them, labels
	// output ([OutputExec], [OutputWebhook], [OutputAlertmanager]) and
	// result: ok, failed, dropped, duplicate (see [Notifier.Stats]).
	// Every result of each configured output is always present; outputs
	// not configured have no series.
	mEvents = "hbmesh_notify_events_total"
	// mRetries counts deliveries after a failure, label output.
	mRetries = "hbmesh_notify_retries_total"
	// mBuildInfo is always 1, labels version, goversion, stream and
	// consumer (Config.Consumer, shared by every worker of a group).
	mBuildInfo = "hbmesh_notify_build_info"
)

// Collector returns a Prometheus collector of n's counters; version is
// the build's, for hbmesh_notify_build_info. Collecting reads atomics
// only, so a scrape costs the outputs nothing.
func (n *Notifier) Collector(version string) prometheus.Collector {
	return &collector{
		n: n, version: version,
		events:    prometheus.NewDesc(mEvents, "Events handled by each notify output: ok (delivered), failed (given up after the last delivery, or refused by the receiver), dropped (never attempted: not an hbmesh event), duplicate (acknowledged without output: the stream said it before).", []string{"output", "result"}, nil),
		retries:   prometheus.NewDesc(mRetries, "Deliveries of an event to a notify output after a failure.", []string{"output"}, nil),
		buildInfo: prometheus.NewDesc(mBuildInfo, "Always 1; labels describe the build, the event stream and the consumer group.", []string{"version", "goversion", "stream", "consumer"}, nil),
	}
}

type collector struct {
	n                          *Notifier
	version                    string
	events, retries, buildInfo *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.retries
	ch <- c.buildInfo
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for output, st := range c.n.Stats() {
		counter(c.events, st.Sent, output, "ok")
		counter(c.events, st.Failed, output, "failed")
		counter(c.events, st.Dropped, output, "dropped")
		counter(c.events, st.Duplicates, output, "duplicate")
		counter(c.retries, st.Retries, output)
	}
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.version, runtime.Version(), c.n.cfg.Stream, c.n.cfg.Consumer)
}
