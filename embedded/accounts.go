package embedded

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/hbmesh/hbmesh/wire"
)

// DefaultMeshAccount is the account hbmesh's own servers (hbmesh server,
// monitor --embedded, demo) put the mesh in.
const DefaultMeshAccount = "HBMESH"

// SystemAccount is the system account of a server with a
// Config.MeshAccount.
const SystemAccount = "SYS"

// globalAccount is nats-server's account for clients of a server without
// accounts.
const globalAccount = "$G"

// validAccount reports why name cannot be a mesh account, or "".
func validAccount(name string) string {
	if name == SystemAccount || name == globalAccount || name == server.DEFAULT_SYSTEM_ACCOUNT {
		return "is reserved"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "may hold only letters, digits, '_' and '-'"
		}
	}
	return ""
}

// meshUser returns the public key of a fresh user, whose seed is thrown
// away at once: clients without credentials become it (nats-server's
// no_auth_user takes an nkey too), and nobody can log in as it any other
// way. An nkey rather than a password, because nats-server warns about a
// password in plain text and cannot take a bcrypt hash for no_auth_user.
func meshUser() string {
	kp, err := nkeys.CreateUser()
	if err != nil { // only if the system's random source fails
		panic(fmt.Sprintf("embedded: create the mesh user's nkey: %v", err))
	}
	pub, err := kp.PublicKey()
	if err != nil {
		panic(fmt.Sprintf("embedded: the mesh user's public key: %v", err))
	}
	kp.Wipe()
	return pub
}

// meshAccounts returns the server configuration of a mesh account and the
// system account: clients without credentials land in the mesh account,
// which imports its own client DISCONNECT advisories and nothing else
// from the system account. The export's account token position makes
// the system account grant each importing account only
// $SYS.ACCOUNT.<that account>.DISCONNECT, so no account can import
// another's.
func meshAccounts(mesh string, jetStream bool) string {
	js := ""
	if jetStream {
		js = "jetstream: enabled\n"
	}
	// The third token of $SYS.ACCOUNT.*.DISCONNECT is the account.
	export := wire.DisconnectAdvisories
	pos := 1 + strings.Count(export[:strings.Index(export, "*")], ".")
	return fmt.Sprintf(`
accounts {
  %[1]s {
    exports: [ { stream: %[2]q, account_token_position: %[3]d } ]
  }
  %[4]s {
    %[5]susers: [ { nkey: %[6]q } ]
    imports: [ { stream: { account: %[1]s, subject: %[7]q } } ]
  }
}
system_account: %[1]s
no_auth_user: %[6]q
`, SystemAccount, export, pos, mesh, js, meshUser(), wire.DisconnectAdvisorySubject(mesh))
}

// baseOptions returns the options Config's fields are applied onto when
// there is no ConfigFile: empty, or the mesh accounts.
func (c Config) baseOptions() (*server.Options, error) {
	o := &server.Options{}
	if c.MeshAccount == "" {
		return o, nil
	}
	if err := o.ProcessConfigString(meshAccounts(c.MeshAccount, c.JetStream)); err != nil {
		return nil, fmt.Errorf("embedded: mesh account %q: %w", c.MeshAccount, err)
	}
	return o, nil
}
