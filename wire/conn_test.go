package wire_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

func TestNodeConnRoundTrip(t *testing.T) {
	for _, c := range []wire.NodeConn{
		{Prefix: "hb", ID: "web-1", Reconnect: 350 * time.Millisecond},
		{Prefix: "acme.hb", ID: "ü-2", Reconnect: 0},
		{Prefix: "hb", ID: "x", Reconnect: wire.MaxReconnectWindow},
	} {
		name, err := c.Name()
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		got, err := wire.ParseNodeConn(name)
		if err != nil {
			t.Fatalf("ParseNodeConn(%q): %v", name, err)
		}
		if got != c {
			t.Errorf("ParseNodeConn(%q) = %+v, want %+v", name, got, c)
		}
	}
}

func TestNodeConnNameRoundsUp(t *testing.T) {
	name, err := wire.NodeConn{Prefix: "hb", ID: "a", Reconnect: 350*time.Millisecond + 1}.Name()
	if err != nil {
		t.Fatal(err)
	}
	if want := "hbmesh node a prefix=hb reconnect=351ms"; name != want {
		t.Errorf("Name() = %q, want %q: a window is never announced shorter than it is", name, want)
	}
}

func TestNodeConnNameRefuses(t *testing.T) {
	for _, c := range []wire.NodeConn{
		{Prefix: "hb", ID: "a.b", Reconnect: time.Second},
		{Prefix: "hb", ID: "a b", Reconnect: time.Second},
		{Prefix: "h*", ID: "a", Reconnect: time.Second},
		{Prefix: "hb", ID: "a", Reconnect: -1},
		{Prefix: "hb", ID: "a", Reconnect: wire.MaxReconnectWindow + time.Millisecond},
	} {
		if name, err := c.Name(); err == nil {
			t.Errorf("%+v: Name() = %q, want an error", c, name)
		}
	}
}

func TestParseNodeConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		want wire.NodeConn
		bad  string // substring of the error; "" for success
	}{
		{name: "hbmesh node web-1 prefix=hb reconnect=350ms", want: wire.NodeConn{Prefix: "hb", ID: "web-1", Reconnect: 350 * time.Millisecond}},
		{name: "hbmesh node web-1 reconnect=1ms prefix=a.b", want: wire.NodeConn{Prefix: "a.b", ID: "web-1", Reconnect: time.Millisecond}},
		{name: "hbmesh node web-1 prefix=hb reconnect=350ms boot=abc", want: wire.NodeConn{Prefix: "hb", ID: "web-1", Reconnect: 350 * time.Millisecond}},
		{name: "hbmesh monitor mon-1", bad: "not a node connection name"},
		{name: "", bad: "not a node connection name"},
		{name: "hbmesh node web-1", bad: "no prefix"},
		{name: "hbmesh node web-1 prefix=hb", bad: "no reconnect"},
		{name: "hbmesh node web-1 prefix=hb reconnect=350", bad: "whole milliseconds"},
		{name: "hbmesh node web-1 prefix=hb reconnect=-1ms", bad: "whole milliseconds"},
		{name: "hbmesh node web-1 prefix=hb reconnect=1.5ms", bad: "whole milliseconds"},
		{name: "hbmesh node web-1 prefix=hb reconnect=3600001ms", bad: "whole milliseconds"},
		{name: "hbmesh node web-1 prefix=hb reconnect=99999999999999ms", bad: "whole milliseconds"},
		{name: "hbmesh node web-1 prefix=hb prefix=hb reconnect=1ms", bad: "prefix given twice"},
		{name: "hbmesh node web-1 prefix=hb reconnect=1ms reconnect=1ms", bad: "reconnect given twice"},
		{name: "hbmesh node web-1  prefix=hb reconnect=1ms", bad: "not key=value"},
		{name: "hbmesh node web-1 prefix=hb reconnect=1ms ", bad: "not key=value"},
		{name: "hbmesh node  prefix=hb reconnect=1ms", bad: "id"},
		{name: "hbmesh node a.b prefix=hb reconnect=1ms", bad: "id"},
		{name: "hbmesh node web-1 prefix=h> reconnect=1ms", bad: "invalid prefix"},
	} {
		got, err := wire.ParseNodeConn(tc.name)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("ParseNodeConn(%q): %v", tc.name, err)
		case tc.bad == "" && got != tc.want:
			t.Errorf("ParseNodeConn(%q) = %+v, want %+v", tc.name, got, tc.want)
		case tc.bad != "" && err == nil:
			t.Errorf("ParseNodeConn(%q) = %+v, want an error containing %q", tc.name, got, tc.bad)
		case tc.bad == "not a node connection name" && err != wire.ErrNotNodeConn:
			t.Errorf("ParseNodeConn(%q): %v, want ErrNotNodeConn itself", tc.name, err)
		case tc.bad != "not a node connection name" && tc.bad != "" && (!errors.Is(err, wire.ErrBadNodeConn) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("ParseNodeConn(%q): %v, want an ErrBadNodeConn containing %q", tc.name, err, tc.bad)
		}
	}
}

func TestDecodeDisconnectAdvisory(t *testing.T) {
	good := `{"type":"io.nats.server.advisory.v1.client_disconnect","id":"x","timestamp":"2026-11-25T12:00:00Z",
		"server":{"name":"n1","host":"0.0.0.0","id":"NABC","ver":"2.15.2","seq":4,"jetstream":false,"time":"2026-11-25T12:00:00Z"},
		"client":{"start":"2026-11-25T11:00:00Z","host":"127.0.0.1","id":7,"acc":"HBMESH","name":"hbmesh node web-1 prefix=hb reconnect=350ms","lang":"go","ver":"1.55.0","rtt":"1ms","kind":"Client","client_type":"nats"},
		"sent":{"msgs":1,"bytes":2},"received":{"msgs":3,"bytes":4},"reason":"Client Closed"}`
	a, err := wire.DecodeDisconnectAdvisory([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if a.Client.Name != "hbmesh node web-1 prefix=hb reconnect=350ms" || a.Client.Account != "HBMESH" || a.Client.ID != 7 ||
		a.Client.Kind != "Client" || a.Reason != "Client Closed" || a.Server.Name != "n1" || a.Server.ID != "NABC" {
		t.Errorf("decoded %+v", a)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{"type":"io.nats.server.advisory.v1.client_connect"}`, `{"type":1}`,
		`{"type":"io.nats.server.advisory.v1.client_disconnect","client":{"id":-1}}`,
		`{"type":"io.nats.server.advisory.v1.client_disconnect"} x`,
		`{"type":"io.nats.server.advisory.v1.client_disconnect","reason":"` + strings.Repeat("x", wire.MaxAdvisory) + `"}`,
	} {
		if _, err := wire.DecodeDisconnectAdvisory([]byte(bad)); !errors.Is(err, wire.ErrBadAdvisory) {
			t.Errorf("DecodeDisconnectAdvisory(%.60q): %v, want ErrBadAdvisory", bad, err)
		}
	}
	if got := wire.DisconnectAdvisorySubject("HBMESH"); got != "$SYS.ACCOUNT.HBMESH.DISCONNECT" {
		t.Errorf("DisconnectAdvisorySubject = %q", got)
	}
}

func FuzzParseNodeConn(f *testing.F) {
	f.Add("hbmesh node web-1 prefix=hb reconnect=350ms")
	f.Add("hbmesh node web-1 prefix=a.b reconnect=0ms x=y")
	f.Add("hbmesh node  prefix= reconnect=ms")
	f.Add("hbmesh monitor m")
	f.Fuzz(func(t *testing.T, name string) {
		c, err := wire.ParseNodeConn(name)
		if err != nil {
			if err != wire.ErrNotNodeConn && !errors.Is(err, wire.ErrBadNodeConn) {
				t.Fatalf("error %v is neither ErrNotNodeConn nor an ErrBadNodeConn", err)
			}
			return
		}
		// Whatever parses is announceable, and announcing it gives a
		// name that parses to the same.
		again, err := c.Name()
		if err != nil {
			t.Fatalf("parsed %+v from %q, which Name refuses: %v", c, name, err)
		}
		back, err := wire.ParseNodeConn(again)
		if err != nil || back != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", name, c, again, back, err)
		}
	})
}

func FuzzDecodeDisconnectAdvisory(f *testing.F) {
	f.Add([]byte(`{"type":"io.nats.server.advisory.v1.client_disconnect","client":{"name":"hbmesh node a prefix=hb reconnect=1ms","id":1},"reason":"Client Closed"}`))
	f.Add([]byte(`{"type":"io.nats.server.advisory.v1.client_disconnect","client":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := wire.DecodeDisconnectAdvisory(data)
		if err != nil {
			if !errors.Is(err, wire.ErrBadAdvisory) {
				t.Fatalf("error %v does not wrap ErrBadAdvisory", err)
			}
			return
		}
		if a.Type != wire.DisconnectAdvisoryType || len(data) > wire.MaxAdvisory {
			t.Fatalf("accepted %+v from %d bytes", a, len(data))
		}
	})
}

func TestDecodeUserInfo(t *testing.T) {
	got, err := wire.DecodeUserInfo([]byte(`{"server":{"name":"n"},"data":{"user":"UAB","user_name":"monitor1","account":"ACD","account_name":"HBMESH",` +
		`"permissions":{"publish":{"allow":["hb.*.probe"],"deny":["hb.*"]},"subscribe":{"allow":["hb.*"]}},"expires":1}}`))
	want := wire.UserInfo{User: "UAB", UserName: "monitor1", Account: "ACD", AccountName: "HBMESH", Permissions: &wire.Permissions{
		Publish:   &wire.SubjectPermission{Allow: []string{"hb.*.probe"}, Deny: []string{"hb.*"}},
		Subscribe: &wire.SubjectPermission{Allow: []string{"hb.*"}},
	}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("= %+v, %v", got, err)
	}
	got, err = wire.DecodeUserInfo([]byte(`{"data":{"user":"mesh","account":"HBMESH"}}`))
	if err != nil || got.Permissions != nil || !got.Permissions.MaySubscribe(wire.DisconnectAdvisories) {
		t.Fatalf("without permissions: %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `{"data":{}}`, `{"error":{"code":400,"description":"x"}}`, `[]`,
		`{"data":{"account":"A","permissions":{"publish":{"allow":"x"}}}}`} {
		if got, err := wire.DecodeUserInfo([]byte(bad)); err == nil {
			t.Errorf("DecodeUserInfo(%q) = %+v, want an error", bad, got)
		}
	}
}

// TestPermissions: nats-server's rules, as it applies them when a
// subscription is made or a message published (internal/sectest checks
// them against a real server).
func TestPermissions(t *testing.T) {
	adv := wire.DisconnectAdvisories
	for _, c := range []struct {
		name    string
		p       *wire.SubjectPermission
		subject string
		want    bool
	}{
		{"no permissions", nil, adv, true},
		{"empty lists", &wire.SubjectPermission{}, adv, true},
		{"exact", &wire.SubjectPermission{Allow: []string{adv}}, adv, true},
		{"full wildcard", &wire.SubjectPermission{Allow: []string{">"}}, adv, true},
		{"prefix wildcard", &wire.SubjectPermission{Allow: []string{"$SYS.>"}}, adv, true},
		{"token wildcard", &wire.SubjectPermission{Allow: []string{"$SYS.ACCOUNT.*.*"}}, adv, true},
		{"one account only", &wire.SubjectPermission{Allow: []string{"$SYS.ACCOUNT.HBMESH.DISCONNECT"}}, adv, false},
		{"not listed", &wire.SubjectPermission{Allow: []string{"hb.*", "_INBOX_m.>"}}, adv, false},
		{"too short", &wire.SubjectPermission{Allow: []string{"$SYS.ACCOUNT.*"}}, adv, false},
		{"too long", &wire.SubjectPermission{Allow: []string{"$SYS.ACCOUNT.*.DISCONNECT.x"}}, adv, false},
		{"denied", &wire.SubjectPermission{Allow: []string{">"}, Deny: []string{"$SYS.>"}}, adv, false},
		{"deny only", &wire.SubjectPermission{Deny: []string{"$SYS.ACCOUNT.*.DISCONNECT"}}, adv, false},
		{"deny overlaps only", &wire.SubjectPermission{Deny: []string{"$SYS.ACCOUNT.X.DISCONNECT"}}, adv, true},
		{"* admits > (SECURITY.md)", &wire.SubjectPermission{Allow: []string{"hb.*"}}, "hb.>", true},
		{"> needs a token", &wire.SubjectPermission{Allow: []string{"hb.>"}}, "hb", false},
		{"literal", &wire.SubjectPermission{Allow: []string{wire.UserInfoSubject}}, wire.UserInfoSubject, true},
		{"other literal", &wire.SubjectPermission{Allow: []string{"$SYS.REQ.USER.INFO.x"}}, wire.UserInfoSubject, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := &wire.Permissions{Subscribe: c.p}
			pub := &wire.Permissions{Publish: c.p}
			if got := sub.MaySubscribe(c.subject); got != c.want {
				t.Errorf("MaySubscribe(%q) = %v, want %v", c.subject, got, c.want)
			}
			if got := pub.MayPublish(c.subject); got != c.want {
				t.Errorf("MayPublish(%q) = %v, want %v", c.subject, got, c.want)
			}
			if !pub.MaySubscribe(c.subject) || !sub.MayPublish(c.subject) {
				t.Error("one direction's list restricts the other")
			}
		})
	}
}

func FuzzDecodeUserInfo(f *testing.F) {
	f.Add([]byte(`{"data":{"user":"m","account":"HBMESH","permissions":{"publish":{"allow":["$SYS.REQ.USER.INFO"]},"subscribe":{"allow":["$SYS.ACCOUNT.*.DISCONNECT"],"deny":["hb.*.probe"]}}}}`))
	f.Add([]byte(`{"data":{"account":"$G","permissions":null}}`))
	f.Add([]byte(`{"error":{"code":400}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := wire.DecodeUserInfo(data)
		if err != nil {
			return
		}
		if u.Account == "" || len(data) > wire.MaxAdvisory {
			t.Fatalf("accepted %+v from %d bytes", u, len(data))
		}
		// Any list is safe to check any subject against.
		for _, s := range []string{wire.DisconnectAdvisories, wire.UserInfoSubject, ">", "a.*.>", ""} {
			u.Permissions.MaySubscribe(s)
			u.Permissions.MayPublish(s)
		}
	})
}
