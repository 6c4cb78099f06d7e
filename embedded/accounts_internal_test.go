package embedded

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMeshAccountsLeastPrivilege: the system account's export lets an
// account import its own DISCONNECT advisories and refuses another's.
// nats-server checks imports when it loads its configuration, so the
// refusal is a start error.
func TestMeshAccountsLeastPrivilege(t *testing.T) {
	conf := meshAccounts("HBMESH", false)
	end := strings.Index(conf, "\n}\nsystem_account:")
	if end < 0 {
		t.Fatalf("unexpected layout:\n%s", conf)
	}
	withOther := func(subject string) string {
		return conf[:end] + `
  OTHER {
    users: [ { user: other, password: x } ]
    imports: [ { stream: { account: SYS, subject: "` + subject + `" } } ]
  }` + conf[end:]
	}
	for _, tc := range []struct {
		subject, want string
	}{
		{"$SYS.ACCOUNT.OTHER.DISCONNECT", ""},
		{"$SYS.ACCOUNT.HBMESH.DISCONNECT", "stream import not authorized"},
		{"$SYS.ACCOUNT.*.DISCONNECT", "stream import not authorized"},
		{"$SYS.ACCOUNT.OTHER.CONNECT", "stream import not authorized"},
	} {
		path := filepath.Join(t.TempDir(), "accounts.conf")
		if err := os.WriteFile(path, []byte(withOther(tc.subject)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{ConfigFile: path, Port: RandomPort})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start()
		s.Shutdown()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("OTHER importing %s: %v", tc.subject, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("OTHER importing %s: %v, want %q", tc.subject, err, tc.want)
		}
	}
}
