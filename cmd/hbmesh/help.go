package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/memory"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// flagGroups are the help sections, by the group tag of their flags. Flags
// without a group come first, under "Flags:".
var flagGroups = []kong.Group{
	{Key: "detection", Title: "Detection flags:"},
	{Key: "http", Title: "HTTP flags:"},
	{Key: "events", Title: "Events flags:"},
	{Key: "alerting", Title: "Alerting flags:"},
	{Key: "memory", Title: "Memory flags:"},
	{Key: "embedded", Title: "Embedded server flags:"},
	{Key: "conn", Title: "Connection flags:"},
	{Key: "log", Title: "Logging flags:"},
}

// defaultVars are the defaults that packages define, for default tags
// (`default:"${suspect_after}"`): the package stays the one place that
// says what they are. A command may override one with a set tag
// (`set:"loglevel=warn"`).
func defaultVars() kong.Vars {
	mc, nc := monitor.DefaultConfig(), node.DefaultConfig()
	return kong.Vars{
		"prefix":            wire.DefaultPrefix,
		"loglevel":          "info",
		"timeout":           "5s",
		"interval":          nc.Interval.String(),
		"detector":          string(mc.Detector),
		"suspect_after":     strconv.FormatFloat(mc.SuspectAfter, 'g', -1, 64),
		"dead_after":        strconv.FormatFloat(mc.DeadAfter, 'g', -1, 64),
		"phi_threshold":     strconv.FormatFloat(mc.PhiThreshold, 'g', -1, 64),
		"max_peers":         strconv.Itoa(mc.MaxPeers),
		"retention":         mc.Retention.String(),
		"advisories":        mc.Advisories,
		"disconnect_margin": mc.DisconnectMargin.String(),
		"per_peer_cap":      strconv.Itoa(httpapi.DefaultPerPeerMetricsCap),
		"on_event_timeout":  events.DefaultExecTimeout.String(),
		"alert_resend":      events.DefaultResendInterval.String(),
		"alert_hold":        notify.DefaultAlertHold.String(),
		"ack_wait":          notify.DefaultAckWait.String(),
		"max_deliver":       strconv.Itoa(notify.DefaultMaxDeliver),
		"notify_consumer":   notify.DefaultConsumer,
		"save_every":        memory.DefaultSaveInterval.String(),
		"embedded_port":     strconv.Itoa(embedded.DefaultPort),
		"embedded_host":     embedded.DefaultHost,
		"status_wait":       status.DefaultWait.String(),
		"status_interval":   status.DefaultInterval.String(),
		"fail_conditions":   strings.Join(status.FailConditions(), ", "),
		"server":            defaultServer,
		"health_url":        defaultHealthURL,
	}
}

// examplesProvider is a subcommand with examples for its help and man page.
type examplesProvider interface{ examples() []string }

// examplesOf returns the examples of the command node n (nil: the app's).
func examplesOf(n *kong.Node) []string {
	if n == nil || n.Type == kong.ApplicationNode {
		return appExamples
	}
	if p, ok := n.Target.Addr().Interface().(examplesProvider); ok {
		return p.examples()
	}
	return nil
}

// printHelp is kong's help followed by the command's examples.
func printHelp(opts kong.HelpOptions, ctx *kong.Context) error {
	if err := kong.DefaultHelpPrinter(opts, ctx); err != nil {
		return err
	}
	if ex := examplesOf(ctx.Selected()); len(ex) > 0 {
		var b strings.Builder
		b.WriteString("\nExamples:\n")
		for _, x := range ex {
			b.WriteString("  " + x + "\n")
		}
		_, err := fmt.Fprint(ctx.Stdout, b.String())
		return err
	}
	return nil
}

// formatValue is a flag's help followed by its default and environment
// variables: "beat interval (default 1s; env $HBMESH_INTERVAL)".
func formatValue(v *kong.Value) string {
	var notes []string
	if d := v.Default; v.HasDefault && d != "" && d != "false" && d != "0" {
		notes = append(notes, "default "+d)
	}
	if v.Flag != nil && len(v.Flag.Envs) > 0 {
		notes = append(notes, "env $"+strings.Join(v.Flag.Envs, ", $"))
	}
	if len(notes) == 0 {
		return v.Help
	}
	return v.Help + " (" + strings.Join(notes, "; ") + ")"
}
