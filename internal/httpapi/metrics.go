package httpapi

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/monitor"
)

// The metrics served on /metrics. All are read from Source, and from the
// event outputs' Stats, at scrape time, so keeping them costs the monitor
// nothing between scrapes. Units are base units (seconds); counters end in
// _total.
const (
	// mPeers is a gauge: peers currently in each state, label state.
	mPeers = "hbmesh_peers"
	// mTransitions counts transitions by target state, label state.
	mTransitions = "hbmesh_transitions_total"
	// mBeats counts beats accepted.
	mBeats = "hbmesh_beats_received_total"
	// mRejected counts beats and probe replies rejected, label reason;
	// every reason in monitor.RejectReasons() is always present.
	mRejected = "hbmesh_beats_rejected_total"
	// mProbesSent counts probes sent to suspect peers.
	mProbesSent = "hbmesh_probes_sent_total"
	// mProbesFailed counts probes that timed out or found no responder.
	mProbesFailed = "hbmesh_probes_failed_total"
	// mProbesAnswered counts probes answered by their peer.
	mProbesAnswered = "hbmesh_probes_answered_total"
	// mProbeRTT is a histogram of probe round-trip times, in seconds.
	mProbeRTT = "hbmesh_probe_rtt_seconds"
	// mOvershoot is a histogram of how late dead verdicts came after their
	// deadline, in seconds: it measures the monitor, not the peers.
	mOvershoot = "hbmesh_detection_overshoot_seconds"
	// mConnected is a gauge: 1 while the monitor's NATS connection is up.
	mConnected = "hbmesh_monitor_connected"
	// mImpaired is a gauge: 1 while verdicts are suspended.
	mImpaired = "hbmesh_monitor_impaired"
	// mStalls counts stalls of the monitor's own sweep loop.
	mStalls = "hbmesh_monitor_stalls_total"
	// mStalled counts seconds the monitor spent stalled.
	mStalled = "hbmesh_monitor_stalled_seconds_total"
	// mOutages counts times observation was impaired.
	mOutages = "hbmesh_monitor_outages_total"
	// mDropped counts beats NATS dropped because the monitor's beat queue
	// was full.
	mDropped = "hbmesh_beats_dropped_total"
	// mEvicted counts peers dropped because the table was full.
	mEvicted = "hbmesh_peers_evicted_total"
	// mForgotten counts dead or left peers dropped after Retention.
	mForgotten = "hbmesh_peers_forgotten_total"
	// mRestarts counts peers seen with a new boot id.
	mRestarts = "hbmesh_restarts_total"
	// mConflicts counts beats from a second boot claiming a known id.
	mConflicts = "hbmesh_boot_conflicts_total"
	// mFastPath is a gauge: 1 once a DISCONNECT advisory has reached the
	// monitor, so the crash fast path can work; 0 before and with
	// --no-fast-path.
	mFastPath = "hbmesh_fast_path"
	// mAdvisories counts DISCONNECT advisories by what became of them,
	// label result; every result in monitor.AdvisoryResults() is always
	// present.
	mAdvisories = "hbmesh_disconnect_advisories_total"
	// mChecks counts crash fast-path checks by outcome (alive, dead,
	// fallback); every outcome in monitor.CheckOutcomes() is always
	// present. outcome="dead" counts the fast path's verdicts.
	mChecks = "hbmesh_fast_path_checks_total"
	// mBuildInfo is always 1, labels version, goversion and monitor (id).
	mBuildInfo = "hbmesh_build_info"
	// mEventOutputs counts events by event output and outcome, labels
	// output (Config.EventOutputs' names) and result (ok, failed,
	// dropped). Only the configured outputs have series.
	mEventOutputs = "hbmesh_event_outputs_total"

	// mDeadPeer is a gauge per dead peer, labels peer, host and prefix:
	// when the monitor declared it dead, as a Unix timestamp. Only dead
	// peers have a series, so it tells dead from left, and at most
	// Config.DeadPeerSeriesCap of them (first by id). On by default: it
	// is what the per-peer dead alert is built on, and it costs nothing
	// while no peer is dead.
	mDeadPeer = "hbmesh_dead_peer_timestamp_seconds"
	// mDeadUnlisted is a gauge: dead peers left without a mDeadPeer
	// series because of the cap.
	mDeadUnlisted = "hbmesh_dead_peers_unlisted"

	// Per-peer series, only with Config.PerPeerMetrics, for at most
	// Config.PerPeerMetricsCap peers (worst states first, then by id).

	// mPeerUp is a gauge per peer, label id: 1 alive, 0 otherwise.
	mPeerUp = "hbmesh_peer_up"
	// mPeerAge is a gauge per peer, label id: seconds since its last beat.
	mPeerAge = "hbmesh_peer_last_beat_age_seconds"
	// mTruncated is a gauge: 1 when peers were left out of the per-peer
	// series because of the cap, 0 otherwise.
	mTruncated = "hbmesh_peer_series_truncated"
)

// EventOutput is an event output (the exec hook, the webhook, the NATS
// publisher) whose counters /metrics exports as
// hbmesh_event_outputs_total{output, result}.
type EventOutput struct {
	// Name is the output label. It becomes a label value, so keep it to a
	// fixed set: hbmesh uses exec, webhook, nats (core publishes) and
	// stream (publishes into --events-stream). Required, unique.
	Name string
	// Stats returns the output's counters. It is called at every scrape
	// and must be safe for concurrent use. Required.
	Stats func() events.Stats
}

// collector turns one Source.Stats() call per scrape into metrics.
type collector struct {
	s *Server

	peers, transitions, beats, rejected                 *prometheus.Desc
	probesSent, probesFailed, probesAnswered, rtt, over *prometheus.Desc
	connected, impaired, stalls, stalled, outages       *prometheus.Desc
	dropped                                             *prometheus.Desc
	evicted, forgotten, restarts, conflicts, buildInfo  *prometheus.Desc
	peerUp, peerAge, truncated                          *prometheus.Desc
	deadPeer, deadUnlisted                              *prometheus.Desc
	eventOutputs                                        *prometheus.Desc
	fastPath, advisories, checks                        *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		s:              s,
		peers:          d(mPeers, "Peers currently in each state.", "state"),
		transitions:    d(mTransitions, "Peer transitions, by target state.", "state"),
		beats:          d(mBeats, "Beats accepted."),
		rejected:       d(mRejected, "Beats and probe replies rejected, by reason.", "reason"),
		probesSent:     d(mProbesSent, "Probes sent to suspect peers."),
		probesFailed:   d(mProbesFailed, "Probes that timed out or found no responder."),
		probesAnswered: d(mProbesAnswered, "Probes answered by their peer."),
		rtt:            d(mProbeRTT, "Probe round-trip time in seconds."),
		over:           d(mOvershoot, "How late dead verdicts came after their deadline, in seconds."),
		connected:      d(mConnected, "1 while the monitor's NATS connection is up."),
		impaired:       d(mImpaired, "1 while the monitor's verdicts are suspended."),
		stalls:         d(mStalls, "Stalls of the monitor's own sweep loop."),
		stalled:        d(mStalled, "Seconds the monitor spent stalled."),
		outages:        d(mOutages, "Times the monitor's observation was impaired."),
		dropped:        d(mDropped, "Beats dropped because the monitor's beat queue was full."),
		evicted:        d(mEvicted, "Peers dropped because the table was full."),
		forgotten:      d(mForgotten, "Dead or left peers dropped after retention."),
		restarts:       d(mRestarts, "Peers seen with a new boot id."),
		conflicts:      d(mConflicts, "Beats from a second boot claiming a known id."),
		fastPath:       d(mFastPath, "1 once a DISCONNECT advisory has reached the monitor: the crash fast path can work."),
		advisories:     d(mAdvisories, "Client DISCONNECT advisories, by what became of them.", "result"),
		checks:         d(mChecks, "Crash fast-path checks, by outcome: alive, dead (verdicts with reason disconnected), fallback (left to the timeout path).", "outcome"),
		buildInfo:      d(mBuildInfo, "Always 1; labels describe the build.", "version", "goversion", "monitor"),
		peerUp:         d(mPeerUp, "1 if the peer is alive, 0 otherwise.", "id"),
		peerAge:        d(mPeerAge, "Seconds since the peer's last beat.", "id"),
		truncated:      d(mTruncated, "1 when per-peer series were capped."),
		deadPeer:       d(mDeadPeer, "When the monitor declared the peer dead, as a Unix timestamp; one series per dead peer, up to a cap.", "peer", "host", "prefix"),
		deadUnlisted:   d(mDeadUnlisted, "Dead peers given no hbmesh_dead_peer_timestamp_seconds series because of the cap."),
		eventOutputs:   d(mEventOutputs, "Events handled by each event output: ok (delivered), failed (given up after the last attempt), dropped (never attempted: queue full, or still queued at shutdown).", "output", "result"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.peers, c.transitions, c.beats, c.rejected, c.probesSent, c.probesFailed,
		c.probesAnswered, c.rtt, c.over, c.connected, c.impaired, c.stalls, c.stalled,
		c.outages, c.dropped, c.evicted, c.forgotten, c.restarts, c.conflicts, c.buildInfo,
		c.deadPeer, c.deadUnlisted,
		c.fastPath, c.advisories, c.checks,
	} {
		ch <- d
	}
	if len(c.s.cfg.EventOutputs) > 0 {
		ch <- c.eventOutputs
	}
	if c.s.cfg.PerPeerMetrics {
		ch <- c.peerUp
		ch <- c.peerAge
		ch <- c.truncated
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func constHistogram(d *prometheus.Desc, h monitor.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			buckets[b] = h.Counts[i]
		}
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.cfg.Source.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range monitor.States() {
		gauge(c.peers, float64(st.Peers[s]), s.String())
		counter(c.transitions, float64(st.Transitions[s]), s.String())
	}
	counter(c.beats, float64(st.Beats))
	for _, r := range monitor.RejectReasons() {
		counter(c.rejected, float64(st.Rejected[r]), r)
	}
	counter(c.probesSent, float64(st.ProbesSent))
	counter(c.probesFailed, float64(st.ProbesFailed))
	counter(c.probesAnswered, float64(st.ProbesAnswered))
	ch <- constHistogram(c.rtt, st.ProbeRTT)
	ch <- constHistogram(c.over, st.Overshoot)
	gauge(c.connected, b2f(st.Connected))
	gauge(c.impaired, b2f(st.Impaired))
	counter(c.stalls, float64(st.Stalls))
	counter(c.stalled, st.StalledFor.Seconds())
	counter(c.outages, float64(st.Outages))
	counter(c.dropped, float64(st.Dropped))
	counter(c.evicted, float64(st.Evicted))
	counter(c.forgotten, float64(st.Forgotten))
	counter(c.restarts, float64(st.Restarts))
	counter(c.conflicts, float64(st.Conflicts))
	gauge(c.fastPath, b2f(st.FastPath))
	for _, r := range monitor.AdvisoryResults() {
		counter(c.advisories, float64(st.Advisories[r]), r)
	}
	for _, o := range monitor.CheckOutcomes() {
		counter(c.checks, float64(st.Checks[o]), o)
	}
	gauge(c.buildInfo, 1, c.s.cfg.Version, runtime.Version(), c.s.id)
	for _, o := range c.s.cfg.EventOutputs {
		es := o.Stats()
		counter(c.eventOutputs, float64(es.Sent), o.Name, "ok")
		counter(c.eventOutputs, float64(es.Failed), o.Name, "failed")
		counter(c.eventOutputs, float64(es.Dropped), o.Name, "dropped")
	}

	c.collectDead(ch)

	if !c.s.cfg.PerPeerMetrics {
		return
	}
	// The monitor picks the worst PerPeerMetricsCap itself, snapshotting
	// only those under its lock.
	ps, matched := c.s.cfg.Source.TopPeers(c.s.cfg.PerPeerMetricsCap)
	truncated := matched > len(ps)
	now := c.s.cfg.Now()
	for i := range ps {
		p := &ps[i]
		gauge(c.peerUp, b2f(p.State == monitor.StateAlive), p.ID)
		if !p.LastBeat.IsZero() {
			gauge(c.peerAge, max(0, now.Sub(p.LastBeat).Seconds()), p.ID)
		}
	}
	gauge(c.truncated, b2f(truncated))
}

// collectDead exports the dead peers, up to the cap, and how many are
// left out.
func (c *collector) collectDead(ch chan<- prometheus.Metric) {
	dead, matched := c.s.cfg.Source.TopPeers(c.s.cfg.DeadPeerSeriesCap, monitor.StateDead)
	unlisted := matched - len(dead)
	for i := range dead {
		p := &dead[i]
		since := float64(p.Since.UnixNano()) / 1e9
		// A host is whatever UTF-8 its peer sent; a label value that the
		// exposition refuses costs the peer its series, not the scrape.
		m, err := prometheus.NewConstMetric(c.deadPeer, prometheus.GaugeValue, since, p.ID, p.Host, c.s.cfg.Prefix)
		if err != nil {
			unlisted++
			continue
		}
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(c.deadUnlisted, prometheus.GaugeValue, float64(unlisted))
}
