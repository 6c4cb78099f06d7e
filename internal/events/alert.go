package events

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hbmesh/hbmesh/monitor"
)

// AlertName is the alertname label of every alert hbmesh sends about a
// dead peer, from any sink.
const AlertName = "HbmeshPeerDead"

// Alert labels hbmesh sets itself; [ValidateAlertLabels] refuses them as
// static labels.
const (
	LabelAlertName = "alertname"
	LabelPeer      = "peer"
	LabelHost      = "host"
	LabelPrefix    = "prefix"
)

// alertLabels returns the labels of the alert about peer id. They name the
// peer and nothing about who reports it, so every monitor sends the same
// set for the same death and a receiver (Alertmanager above all) merges
// them into one alert.
func alertLabels(prefix, id, host string, static map[string]string) map[string]string {
	l := make(map[string]string, 4+len(static))
	for k, v := range static {
		l[k] = v
	}
	l[LabelAlertName] = AlertName
	l[LabelPeer] = id
	l[LabelHost] = host
	l[LabelPrefix] = prefix
	return l
}

// ValidateAlertLabels checks static alert labels: each name is a
// Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__")
// other than the four hbmesh sets, and each value is non-empty UTF-8.
func ValidateAlertLabels(labels map[string]string) error {
	for k, v := range labels {
		switch {
		case !validLabelName(k):
			return fmt.Errorf("%q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", k)
		case k == LabelAlertName || k == LabelPeer || k == LabelHost || k == LabelPrefix:
			return fmt.Errorf("%q is set by hbmesh", k)
		case v == "" || !utf8.ValidString(v):
			return fmt.Errorf("%s=%q needs a non-empty UTF-8 value", k, v)
		}
	}
	return nil
}

func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// peerURL links to peer id on the dashboard at external (its filter
// preset to the id), or is "" when there is no external URL.
func peerURL(external, id string) string {
	if external == "" {
		return ""
	}
	return strings.TrimRight(external, "/") + "/?q=" + url.QueryEscape(id)
}

// deadPeer is what an alert says about a peer declared dead.
type deadPeer struct {
	id, host, boot string
	seq            uint64
	interval       time.Duration
	lastBeat       time.Time // zero when unknown
	since          time.Time // when it was declared dead
	reason         monitor.Reason
	monitor        string // who reported it; "" when unknown
}

func deadFromEvent(ev *monitor.Event, monitorID string) deadPeer {
	return deadPeer{id: ev.ID, host: ev.Host, boot: ev.Boot, seq: ev.Seq, interval: ev.Interval, lastBeat: ev.LastBeat.UTC(), since: ev.Time.UTC(), reason: ev.Reason, monitor: monitorID}
}

func deadFromInfo(p *monitor.PeerInfo, monitorID string) deadPeer {
	return deadPeer{id: p.ID, host: p.Host, boot: p.Boot, seq: p.Seq, interval: p.Interval, lastBeat: p.LastBeat.UTC(), since: p.Since.UTC(), reason: p.Reason, monitor: monitorID}
}

const timeFormat = time.RFC3339

// annotations are the firing alert's summary and description, the
// reason it died ("timeout" or "disconnected", as events name it; absent
// when unknown), and the reporting monitor when known.
func (d *deadPeer) annotations() map[string]string {
	var b strings.Builder
	fmt.Fprintf(&b, "Peer %s (host %q) ", d.id, d.host)
	last := "last beat unknown"
	if !d.lastBeat.IsZero() {
		last = "last beat " + d.lastBeat.Format(timeFormat)
	}
	if d.reason == monitor.ReasonDisconnected {
		fmt.Fprintf(&b, "lost its NATS connection (%s) and neither reconnected, beat nor answered its probe within its reconnect window", last)
	} else {
		fmt.Fprintf(&b, "stopped beating (%s) and did not answer its probe", last)
	}
	fmt.Fprintf(&b, "; declared dead at %s. Beat interval %s, last seq %d, boot %q.", d.since.Format(timeFormat), d.interval, d.seq, d.boot)
	a := map[string]string{
		"summary":     fmt.Sprintf("hbmesh peer %s is dead", d.id),
		"description": b.String(),
	}
	if d.reason != "" {
		a["reason"] = string(d.reason)
	}
	if d.monitor != "" {
		a["monitor"] = d.monitor
	}
	return a
}

// resolvedAnnotations say why peer id is no longer dead: it is now in
// state for reason (state "" when the monitor no longer knows the peer).
func resolvedAnnotations(id, host string, state monitor.State, reason monitor.Reason, monitorID string) map[string]string {
	desc := fmt.Sprintf("Peer %s (host %q) is no longer known to the monitor (forgotten after its retention).", id, host)
	if state != monitor.StateUnknown {
		desc = fmt.Sprintf("Peer %s (host %q) is %s again", id, host, state)
		if reason != "" {
			desc += " (" + string(reason) + ")"
		}
		desc += "."
	}
	a := map[string]string{
		"summary":     fmt.Sprintf("hbmesh peer %s is no longer dead", id),
		"description": desc,
	}
	if monitorID != "" {
		a["monitor"] = monitorID
	}
	return a
}

// PostableAlert is one alert of the body of Alertmanager's API v2
// (POST /api/v2/alerts), the format Prometheus sends.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// AlertmanagerPath is where an Alertmanager accepts alerts, below its
// base URL.
const AlertmanagerPath = "/api/v2/alerts"

// AlertmanagerAlertsURL returns the API v2 alerts URL of the Alertmanager
// at base (http://am:9093, or with the path prefix of an Alertmanager
// behind --web.route-prefix): AlertmanagerPath joined to its path. base
// is one [ValidateAlertmanagerURL] accepts.
func AlertmanagerAlertsURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // refused by the validation; NewPoster says so
	}
	return u.JoinPath(AlertmanagerPath).String()
}

// ValidateAlertmanagerURL checks that s can be an Alertmanager's base
// URL: an http or https URL ([ValidateURL]) without a query or a
// fragment, which would end up before the API path hbmesh adds. Like
// ValidateURL's, its error shows only the scheme and host of s.
func ValidateAlertmanagerURL(s string) error {
	if err := ValidateURL(s); err != nil {
		return err
	}
	if u, _ := url.Parse(s); u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(s, "#") {
		return fmt.Errorf("%q: a query or fragment (not shown) has no place in an Alertmanager's base URL, to which hbmesh adds %s", endpoint(s), AlertmanagerPath)
	}
	return nil
}

// EventAlert returns the Alertmanager alert about ev, which must be a dead
// event or one leaving the dead state, for a sender that cannot re-send it
// (hbmesh notify handles each event once): a dead event fires the alert
// from ev.Time until ev.Time+hold, after which Alertmanager resolves it by
// itself; leaving the dead state resolves it at ev.Time. start is when the
// peer died, the time of the dead event (for a dead event, ev.Time).
// prefix and static make the labels, as for [Alertmanager]; monitorID,
// when not "", is an annotation, and externalURL the dashboard that
// generatorURL links into.
func EventAlert(ev *monitor.Event, start time.Time, hold time.Duration, prefix string, static map[string]string, monitorID, externalURL string) PostableAlert {
	a := PostableAlert{
		Labels:       alertLabels(prefix, ev.ID, ev.Host, static),
		StartsAt:     start.UTC(),
		GeneratorURL: peerURL(externalURL, ev.ID),
	}
	if ev.State == monitor.StateDead {
		d := deadFromEvent(ev, monitorID)
		a.Annotations = d.annotations()
		a.EndsAt = ev.Time.UTC().Add(hold)
	} else {
		a.Annotations = resolvedAnnotations(ev.ID, ev.Host, ev.State, ev.Reason, monitorID)
		a.EndsAt = ev.Time.UTC()
	}
	return a
}
