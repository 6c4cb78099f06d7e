package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/hbmesh/hbmesh/internal/events"
)

// alertFlags are the flags of the Alertmanager output and of what alerts
// link to; monitor and notify have them.
type alertFlags struct {
	Alertmanager []string          `placeholder:"URL" env:"HBMESH_ALERTMANAGER" secret:"" help:"post alerts about dead peers to the Alertmanager at URL (its API v2, as Prometheus does); repeatable: list every member of an Alertmanager cluster (the variable: comma separated)"`
	Label        map[string]string `name:"alert-label" type:"alertlabels" placeholder:"KEY=VALUE" env:"HBMESH_ALERT_LABELS" help:"label added to every alert, e.g. cluster=prod or severity=page; repeatable (the variable: comma separated)"`
	Header       []string          `name:"alert-header" sep:"none" placeholder:"NAME=VALUE" env:"HBMESH_ALERT_HEADER" secret:"" help:"HTTP header sent to the Alertmanagers; repeatable (the variable: one header); VALUE may be @FILE or env:VAR, which keep a secret out of ps"`
	ExternalURL  string            `name:"external-url" placeholder:"URL" env:"HBMESH_EXTERNAL_URL" help:"the dashboard's address as users reach it, e.g. https://mon-1.example/: alerts and webhook notifications link to their peer there"`
}

// webhookFlags are the webhook output's flags; monitor and notify have
// them.
type webhookFlags struct {
	Webhook string   `placeholder:"URL" env:"HBMESH_WEBHOOK" secret:"" help:"POST a notification for each dead peer (firing) and its recovery (resolved) to URL, in the JSON Alertmanager sends to its webhook receivers; Alertmanager does not accept it: post to one with --alertmanager"`
	Header  []string `name:"webhook-header" sep:"none" placeholder:"NAME=VALUE" env:"HBMESH_WEBHOOK_HEADER" secret:"" help:"HTTP header sent with each webhook; repeatable (the variable: one header); VALUE may be @FILE or env:VAR, which keep a secret out of ps"`
}

// validate checks the combinations and values the flag types cannot; the
// URLs are named only by scheme and host, which hold no secret.
func (w *webhookFlags) validate(e *env) error {
	if w.Webhook == "" {
		if e.given("webhook-header") {
			return usagef("%s needs --webhook", e.source("webhook-header"))
		}
		return nil
	}
	if err := events.ValidateURL(w.Webhook); err != nil {
		return usagef("%s %v", e.source("webhook"), err)
	}
	return nil
}

// apiPath matches a URL path that already names an Alertmanager API.
var apiPath = regexp.MustCompile(`/api/v[12](/alerts)?/?$`)

// validate checks the combinations and values the flag types cannot.
// webhook says whether --webhook is given, which --external-url serves
// too.
func (a *alertFlags) validate(e *env, webhook bool) error {
	if len(a.Alertmanager) == 0 {
		for _, name := range []string{"alert-label", "alert-header"} {
			if e.given(name) {
				return usagef("%s needs --alertmanager", e.source(name))
			}
		}
	}
	seen := map[string]bool{}
	for _, u := range a.Alertmanager {
		if err := events.ValidateAlertmanagerURL(u); err != nil {
			return usagef("%s %v", e.source("alertmanager"), err)
		}
		if p, err := url.Parse(u); err == nil && apiPath.MatchString(p.Path) {
			// hbmesh adds the API's path; with it twice every post gets a
			// 404, seen only once a peer dies.
			return usagef("%s: give each Alertmanager's base URL (http://am:9093), without %s, which hbmesh adds", e.source("alertmanager"), events.AlertmanagerPath)
		}
		if seen[u] {
			return usagef("%s lists an Alertmanager twice", e.source("alertmanager"))
		}
		seen[u] = true
	}
	if a.ExternalURL != "" {
		if len(a.Alertmanager) == 0 && !webhook {
			return usagef("%s needs --alertmanager or --webhook, whose notifications link to the dashboard", e.source("external-url"))
		}
		if err := events.ValidateURL(a.ExternalURL); err != nil {
			return usagef("%s %v", e.source("external-url"), err)
		}
	}
	return nil
}

// headers turns NAME=VALUE items of flag into request headers. A VALUE of
// @FILE is the file's content (one trailing newline dropped), env:VAR the
// variable's; anything else is the value itself. Errors name the flag,
// and the header once its name is valid; never a value, nor an item that
// is not NAME=VALUE.
func headers(e *env, flag string, items []string) (http.Header, error) {
	if len(items) == 0 {
		return nil, nil
	}
	h := http.Header{}
	for _, item := range items {
		name, spec, ok := strings.Cut(item, "=")
		if !ok || events.ValidateHeader(http.Header{name: nil}) != nil {
			// Neither part is shown: "Authorization: Bearer <token>=="
			// cut at its first '=' puts the token in the name.
			return nil, usagef(`%s: not NAME=VALUE, NAME=@FILE or NAME=env:VAR (a header name is letters, digits and -; write "Authorization=Bearer ...", not "Authorization: ...")`, e.source(flag))
		}
		value := spec
		switch {
		case strings.HasPrefix(spec, "@"):
			path := spec[1:]
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, pathUsage(fmt.Sprintf("%s %s", e.source(flag), name), path, err)
			}
			value = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		case strings.HasPrefix(spec, "env:"):
			v := spec[len("env:"):]
			if value = e.getenv(v); value == "" {
				return nil, usagef("%s %s: $%s is empty or not set", e.source(flag), name, v)
			}
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, usagef("%s %s: the value holds a line break or a NUL", e.source(flag), name)
		}
		h.Add(name, value)
	}
	return h, nil
}
