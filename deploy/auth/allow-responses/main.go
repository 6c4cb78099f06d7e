// Command allow-responses grants response permissions to a role (a scoped
// signing key) of an account managed with `nats auth`: every user signed
// with that role may then publish one reply to the reply subject of each
// request it receives, as `allow_responses: true` does in a server
// configuration. It is the one step of docs/SECURITY.md's decentralized
// setup that natscli v0.5.0 has no flag for (nsc has:
// `nsc edit signing-key --account ACCOUNT --sk ROLE --allow-pub-response`).
//
// It edits the same store as `nats auth` ($XDG_DATA_HOME/nats/nsc, or
// ~/.local/share/nats/nsc), through the library natscli itself uses, and
// prints only the role, the account and the grant, never a key.
//
//	allow-responses [--operator NAME] [--max N] [--expires DURATION] ACCOUNT ROLE
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ab "github.com/synadia-io/jwt-auth-builder.go"
	"github.com/synadia-io/jwt-auth-builder.go/providers/nsc"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "allow-responses:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("allow-responses", flag.ContinueOnError)
	operator := fs.String("operator", "", "operator holding the account (default: the only one)")
	maxMsgs := fs.Int("max", 1, "replies allowed per request")
	expires := fs.Duration("expires", 0, "how long after a request its replies are allowed (0: the server's default, 2m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: allow-responses [--operator NAME] [--max N] [--expires DURATION] ACCOUNT ROLE")
	}
	account, role := fs.Arg(0), fs.Arg(1)
	if *maxMsgs < 1 || *expires < 0 {
		return fmt.Errorf("--max must be at least 1 and --expires not negative (got %d, %v)", *maxMsgs, *expires)
	}

	dir, err := storeDir(getenv)
	if err != nil {
		return err
	}
	auth, err := ab.NewAuth(nsc.NewNscProvider(filepath.Join(dir, "stores"), filepath.Join(dir, "keys")))
	if err != nil {
		return fmt.Errorf("open the nats auth store in %s: %w", dir, err)
	}
	op, err := pickOperator(auth, *operator)
	if err != nil {
		return err
	}
	acct, err := op.Accounts().Get(account)
	if err != nil {
		return fmt.Errorf("account %q of operator %q: %w", account, op.Name(), err)
	}
	scopes, err := acct.ScopedSigningKeys().GetScopeByRole(role)
	if err != nil {
		return fmt.Errorf("role %q of account %q: %w", role, account, err)
	}
	if len(scopes) == 0 {
		return fmt.Errorf("account %q has no scoped signing key with role %q (nats auth account keys add %s %s)", account, role, account, role)
	}
	for _, s := range scopes {
		rp := s.ResponsePermissions()
		if err := rp.SetMaxMessages(*maxMsgs); err != nil {
			return fmt.Errorf("role %q: %w", role, err)
		}
		if err := rp.SetExpires(*expires); err != nil {
			return fmt.Errorf("role %q: %w", role, err)
		}
	}
	if err := auth.Commit(); err != nil {
		return fmt.Errorf("save the nats auth store: %w", err)
	}
	fmt.Fprintf(stdout, "role %s of account %s: users may send %d response(s) per request", role, account, *maxMsgs)
	if *expires > 0 {
		fmt.Fprintf(stdout, " within %v", *expires)
	}
	fmt.Fprintln(stdout, "; push the account to apply it")
	return nil
}

// storeDir is where natscli v0.5.0 keeps its nsc-compatible store.
func storeDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "nats", "nsc"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the nats auth store: %w", err)
	}
	return filepath.Join(home, ".local", "share", "nats", "nsc"), nil
}

func pickOperator(auth ab.Auth, name string) (ab.Operator, error) {
	if name != "" {
		op, err := auth.Operators().Get(name)
		if err != nil {
			return nil, fmt.Errorf("operator %q: %w", name, err)
		}
		return op, nil
	}
	ops := auth.Operators().List()
	if len(ops) != 1 {
		return nil, fmt.Errorf("%d operators in the store: name one with --operator", len(ops))
	}
	return ops[0], nil
}
