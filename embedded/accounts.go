package embedded

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hbmesh/hbmesh/wire"
)

// DefaultMeshAccount is the account hbmesh's own servers (hbmesh server,
// monitor --embedded, demo) put the mesh in.
const DefaultMeshAccount = "HBMESH"

// SystemAccount is the system account of a server with a
// Config.MeshAccount.
const SystemAccount = "SYS"

// meshUser is the user a client that connects without credentials
// becomes (nats-server's no_auth_user). Its password is random and never
// shown: nobody logs in as it.
const meshUser = "mesh"

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
    %[5]susers: [ { user: %[6]q, password: %[7]q } ]
    imports: [ { stream: { account: %[1]s, subject: %[8]q } } ]
  }
}
system_account: %[1]s
no_auth_user: %[6]q
`, SystemAccount, export, pos, mesh, js, meshUser, rand.Text(), wire.DisconnectAdvisorySubject(mesh))
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
