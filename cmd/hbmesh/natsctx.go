package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nats-io/jsm.go/natscontext"
)

// applyContext loads the nats CLI context named by --context (or
// $NATS_CONTEXT) and fills every connection setting that neither a flag
// nor its environment variable gave: a context is the weakest source, as in
// the nats CLI. Without --context nothing is loaded, not even the context
// `nats context select` chose: hbmesh runs as a service, and a service
// should not change behaviour with an operator's interactive selection.
// The context's credentials apply only when no flag or variable chose a
// way to authenticate (see checkAuth); a context holding several kinds is
// used as the nats CLI uses it.
func (c *connFlags) applyContext(e *env, f *flags) error {
	if c.context == "" {
		return nil
	}
	nctx, err := loadNATSContext(e, c.context)
	if err != nil {
		return fmt.Errorf("--context %s: %w", c.context, err)
	}
	weak := func(long string) bool {
		if f.isSet(long) {
			return false
		}
		if ev := f.env[long]; ev != "" && e.getenv != nil && e.getenv(ev) != "" {
			return false
		}
		return true
	}
	set := func(p *string, long, v string) {
		if v != "" && weak(long) {
			*p = v
		}
	}
	set(&c.server, "server", nctx.ServerURL())
	set(&c.tlsCert, "tlscert", nctx.Certificate())
	set(&c.tlsKey, "tlskey", nctx.Key())
	set(&c.tlsCA, "tlsca", nctx.CA())
	set(&c.inboxPrefix, "inbox-prefix", nctx.InboxPrefix())
	if c.hasAuth() {
		// A flag or variable chose how to authenticate; the context's
		// credentials, of that or another kind, would only conflict.
		return nil
	}
	set(&c.user, "user", nctx.User())
	set(&c.password, "password", nctx.Password())
	set(&c.token, "token", nctx.Token())
	creds := nctx.Creds()
	if strings.Contains(creds, "://") {
		// op://, nsc:// and env:// references need resolvers hbmesh does
		// not wire; only file references are taken as paths.
		after, ok := strings.CutPrefix(creds, "file://")
		if !ok {
			return fmt.Errorf("--context %s: credential reference %q is not supported; give a file path", c.context, creds)
		}
		creds = after
	}
	set(&c.creds, "creds", creds)
	set(&c.nkey, "nkey", nctx.NKey())
	return nil
}

// loadNATSContext loads name, a context name or the path of a context's
// JSON file. Contexts live in $XDG_CONFIG_HOME/nats/context, or
// $HOME/.config/nats/context; both are read through e.getenv so tests run
// in-process can point them elsewhere.
func loadNATSContext(e *env, name string) (*natscontext.Context, error) {
	if strings.HasSuffix(name, ".json") || strings.ContainsRune(name, filepath.Separator) {
		return natscontext.NewFromFile(name)
	}
	if err := natscontext.ValidateName(name); err != nil {
		return nil, err
	}
	root := ""
	if e.getenv != nil {
		if x := e.getenv("XDG_CONFIG_HOME"); x != "" {
			root = x
		} else if h := e.getenv("HOME"); h != "" {
			root = filepath.Join(h, ".config")
		}
	}
	if root == "" {
		return natscontext.New(name, true)
	}
	return natscontext.NewRegistry(natscontext.NewFileBackendAt(root)).Load(context.Background(), name)
}
