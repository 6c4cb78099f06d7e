package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DisconnectAdvisories is the subject a monitor subscribes to for the
// server's client DISCONNECT advisories: nats-server publishes one on
// $SYS.ACCOUNT.<account>.DISCONNECT in its system account whenever a
// client connection of <account> ends. An account sees them only if it is
// the system account or imports that subject (see docs/SECURITY.md); the
// wildcard matches the import whatever the account is called.
const DisconnectAdvisories = "$SYS.ACCOUNT.*.DISCONNECT"

// DisconnectAdvisorySubject returns the subject of account's DISCONNECT
// advisories, for exports, imports and permissions.
func DisconnectAdvisorySubject(account string) string {
	return "$SYS.ACCOUNT." + account + ".DISCONNECT"
}

// DisconnectAdvisoryType is the "type" of a client DISCONNECT advisory.
const DisconnectAdvisoryType = "io.nats.server.advisory.v1.client_disconnect"

// MaxAdvisory is the largest advisory payload decoded, in bytes; a real
// one is one or two KiB.
const MaxAdvisory = 64 << 10

// DisconnectAdvisory is the part of a client DISCONNECT advisory that
// hbmesh reads. Anything else in the payload is ignored.
type DisconnectAdvisory struct {
	Type   string `json:"type"`
	Server struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	} `json:"server"`
	Client struct {
		ID      uint64 `json:"id"`   // the connection's id on its server
		Name    string `json:"name"` // the connection's name
		Account string `json:"acc"`
		Kind    string `json:"kind"` // "Client" for client connections
	} `json:"client"`
	// Reason is why the connection ended, in nats-server's words:
	// "Client Closed", "Read Error", "Stale Connection", ...
	Reason string `json:"reason"`
}

// ErrBadAdvisory is wrapped by every error [DecodeDisconnectAdvisory]
// returns.
var ErrBadAdvisory = errors.New("bad disconnect advisory")

// DecodeDisconnectAdvisory decodes a DISCONNECT advisory. It refuses
// payloads over [MaxAdvisory] bytes, anything that is not one JSON object,
// and objects whose type is not [DisconnectAdvisoryType].
func DecodeDisconnectAdvisory(data []byte) (DisconnectAdvisory, error) {
	var a DisconnectAdvisory
	if len(data) > MaxAdvisory {
		return a, fmt.Errorf("%w: %d bytes, more than %d", ErrBadAdvisory, len(data), MaxAdvisory)
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return DisconnectAdvisory{}, fmt.Errorf("%w: %w", ErrBadAdvisory, err)
	}
	if a.Type != DisconnectAdvisoryType {
		return DisconnectAdvisory{}, fmt.Errorf("%w: type %q, want %q", ErrBadAdvisory, a.Type, DisconnectAdvisoryType)
	}
	return a, nil
}

// UserInfoSubject is the request subject on which nats-server tells a
// client which user and account it is, and what it may publish and
// subscribe to (every account imports it from the system account).
const UserInfoSubject = "$SYS.REQ.USER.INFO"

// UserInfo is the part of a reply on [UserInfoSubject] that hbmesh reads.
type UserInfo struct {
	// User is the user's name, or its public key (nkeys, JWT).
	User string `json:"user"`
	// UserName is a JWT user's name; empty otherwise.
	UserName string `json:"user_name"`
	// Account is the account's name, or its public key in operator mode.
	Account string `json:"account"`
	// AccountName is the name of an account of operator mode; empty
	// otherwise.
	AccountName string `json:"account_name"`
	// Permissions are what the client may publish and subscribe to; nil
	// when the server restricts it in nothing.
	Permissions *Permissions `json:"permissions"`
}

// Permissions are a client's publish and subscribe permissions as
// nats-server reports them. A nil *Permissions, or a nil or empty list,
// restricts nothing.
type Permissions struct {
	Publish   *SubjectPermission `json:"publish"`
	Subscribe *SubjectPermission `json:"subscribe"`
}

// SubjectPermission is one direction of [Permissions]: a subject is
// allowed if Allow is empty or one of its entries matches it, and no
// entry of Deny matches it.
type SubjectPermission struct {
	Allow []string `json:"allow"`
	Deny  []string `json:"deny"`
}

// MayPublish reports whether the server lets the client publish on
// subject.
func (p *Permissions) MayPublish(subject string) bool {
	return p == nil || p.Publish.allows(subject)
}

// MaySubscribe reports whether the server lets the client subscribe to
// subject, as nats-server decides when the subscription is made: a
// wildcard in subject is taken as a literal token, which an allow or
// deny entry's wildcard matches (so "hb.*" admits "hb.>"). A deny entry
// that only overlaps a wildcard subscription does not refuse it; the
// server filters those messages out on delivery instead.
func (p *Permissions) MaySubscribe(subject string) bool {
	return p == nil || p.Subscribe.allows(subject)
}

func (sp *SubjectPermission) allows(subject string) bool {
	if sp == nil {
		return true
	}
	allowed := len(sp.Allow) == 0
	for _, a := range sp.Allow {
		allowed = allowed || permissionMatches(a, subject)
	}
	for _, d := range sp.Deny {
		allowed = allowed && !permissionMatches(d, subject)
	}
	return allowed
}

// permissionMatches reports whether the permission entry pattern matches
// subject token by token, subject's wildcards taken literally: "*" in
// pattern matches any one token, ">" one or more.
func permissionMatches(pattern, subject string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		s, srest, smore := strings.Cut(subject, ".")
		switch {
		case p == ">":
			return true
		case p != "*" && p != s:
			return false
		case !pmore || !smore:
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// DecodeUserInfo decodes a reply on [UserInfoSubject]. It returns an
// error if the reply is not one, names no account, or reports an error.
func DecodeUserInfo(data []byte) (UserInfo, error) {
	var r struct {
		Data  *UserInfo `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if len(data) > MaxAdvisory {
		return UserInfo{}, fmt.Errorf("user info: %d bytes, more than %d", len(data), MaxAdvisory)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return UserInfo{}, fmt.Errorf("user info: %w", err)
	}
	switch {
	case r.Error != nil:
		return UserInfo{}, fmt.Errorf("user info: error %d %s", r.Error.Code, r.Error.Description)
	case r.Data == nil || r.Data.Account == "":
		return UserInfo{}, errors.New("user info: no account in the reply")
	}
	return *r.Data, nil
}
