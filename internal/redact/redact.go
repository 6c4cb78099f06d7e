// Package redact is the one rule by which a URL reaches a message or a
// log line in hbmesh: with its credentials hidden. The command line, the
// monitor and every other package that shows a URL use [URL], so a
// password or a token given in a URL (nats://TOKEN@host, which NATS reads
// as a token) is never printed, whichever path prints it.
//
// nats.go's own redaction (Conn.ConnectedUrlRedacted, url.URL.Redacted)
// hides a password but shows a token: do not log what it returns.
package redact

import (
	"net/url"
	"strings"
)

// URL returns s with its credentials hidden. A password is hidden by
// url.URL.Redacted; a user without a password, which NATS takes for a
// token, becomes "redacted"; in a URL that does not parse, or holds an @
// where no user belongs (a typo such as "nats:/user:password@host"),
// whatever comes before its last @ back to the last slash is hidden. A URL
// without an @ holds no credentials and comes back as given; one without
// a scheme is read as nats.go reads a bare host:port.
func URL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	full := s
	if !strings.Contains(s, "://") {
		full = "nats://" + s // as nats.go reads a bare host:port
	}
	u, err := url.Parse(full)
	if err != nil || u.User == nil {
		return s[:strings.LastIndex(s[:at], "/")+1] + "xxxxx" + s[at:]
	}
	if _, ok := u.User.Password(); !ok {
		u.User = url.User("redacted") // a token
	}
	return u.Redacted()
}
