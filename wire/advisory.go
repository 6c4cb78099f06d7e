package wire

import (
	"encoding/json"
	"errors"
	"fmt"
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
// client which user and account it is (every account imports it from the
// system account).
const UserInfoSubject = "$SYS.REQ.USER.INFO"

// DecodeUserInfoAccount returns the account named by a reply on
// [UserInfoSubject], or an error if the reply is not one or reports an
// error.
func DecodeUserInfoAccount(data []byte) (string, error) {
	var r struct {
		Data *struct {
			Account string `json:"account"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if len(data) > MaxAdvisory {
		return "", fmt.Errorf("user info: %d bytes, more than %d", len(data), MaxAdvisory)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("user info: %w", err)
	}
	switch {
	case r.Error != nil:
		return "", fmt.Errorf("user info: error %d %s", r.Error.Code, r.Error.Description)
	case r.Data == nil || r.Data.Account == "":
		return "", errors.New("user info: no account in the reply")
	}
	return r.Data.Account, nil
}
