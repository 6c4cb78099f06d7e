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
//
// The context's credentials apply only when no flag or variable chose a
// way to authenticate (see checkAuth), and then as the nats CLI applies
// them, through natscontext: inline ones (`nats context save --embed`
// stores creds and nkeys as data: URLs), env://, op:// and nsc://
// references, a user JWT and seed. A --password flag or variable replaces
// the context's password.
func (c *connFlags) applyContext() error {
	if c.Context == "" {
		return nil
	}
	nctx, err := loadNATSContext(c.e, c.Context)
	if err != nil {
		return usagef("%s: %v", c.contextName(), err)
	}
	if err := c.checkContextSettings(nctx); err != nil {
		return err
	}
	set := func(p *string, name, v string) {
		if v != "" && !c.e.given(name) {
			*p = v
		}
	}
	set(&c.Server, "server", nctx.ServerURL())
	set(&c.TLSCert, "tlscert", nctx.Certificate())
	set(&c.TLSKey, "tlskey", nctx.Key())
	set(&c.TLSCA, "tlsca", nctx.CA())
	set(&c.InboxPrefix, "inbox-prefix", nctx.InboxPrefix())

	opts := []natscontext.Option{natscontext.WithSocksProxy(nctx.SocksProxy())}
	if nctx.TLSHandshakeFirst() {
		opts = append(opts, natscontext.WithTLSHandshakeFirst())
	}
	if !c.hasAuth() {
		// A credentials file named by path is checked like --creds, so a
		// wrong path is a usage error before anything connects.
		for _, f := range []struct{ name, ref string }{{"creds", nctx.Creds()}, {"nkey", nctx.NKey()}} {
			if path, ok := filePath(f.ref); ok {
				if err := checkFile(c.source(f.name), path); err != nil {
					return err
				}
				if err := checkConnFile(f.name, c.source(f.name), path); err != nil {
					return err
				}
			}
		}
		password := nctx.Password()
		if c.e.given("password") {
			password = c.Password
		}
		c.ctxUser, c.ctxWho = nctx.User(), contextPrincipal(nctx, c.contextName())
		opts = append(opts,
			natscontext.WithUser(nctx.User()), natscontext.WithPassword(password),
			natscontext.WithToken(nctx.Token()),
			natscontext.WithCreds(nctx.Creds()), natscontext.WithNKey(nctx.NKey()),
			natscontext.WithUserJWT(nctx.UserJWT()), natscontext.WithUserSeed(nctx.UserSeed()))
	}
	// A context built from options alone resolves references with
	// natscontext's default resolvers: file, data, env, op and nsc.
	auth, err := natscontext.New(nctx.Name, false, opts...)
	if err == nil {
		c.ctxOpts, err = auth.NATSOptions()
	}
	if err != nil {
		// natscontext's errors name the field and the scheme, never the
		// material (checked by TestSecretsNeverPrinted).
		return usagef("%s: %v", c.contextName(), err)
	}
	return nil
}

// checkContextSettings refuses a context that asks for what hbmesh does
// not do, rather than connect without it: a JetStream domain or API
// prefix, for a command that uses JetStream (its stream, consumer and KV
// bucket are in the connection's own account and domain), and a Windows
// certificate store. Settings that change nothing for hbmesh are left
// alone: the description, the colour scheme, and the JetStream event
// prefix, which only `nats event` reads.
func (c *connFlags) checkContextSettings(nctx *natscontext.Context) error {
	var fields []string
	if c.jetStream {
		if v := nctx.JSDomain(); v != "" {
			fields = append(fields, fmt.Sprintf("jetstream_domain %q", v))
		}
		if v := nctx.JSAPIPrefix(); v != "" {
			fields = append(fields, fmt.Sprintf("jetstream_api_prefix %q", v))
		}
	}
	if nctx.WindowsCertStore() != "" || nctx.WindowsCertStoreMatchBy() != "" || nctx.WindowsCertStoreMatch() != "" || len(nctx.WindowsCaCertsMatch()) > 0 {
		fields = append(fields, "windows_cert_store")
	}
	if len(fields) == 0 {
		return nil
	}
	return usagef("%s sets %s, which hbmesh does not apply: use a context without it", c.contextName(), strings.Join(fields, " and "))
}

// contextName names the context for messages: --context NAME, or
// $NATS_CONTEXT NAME when the variable chose it.
func (c *connFlags) contextName() string {
	if c.e != nil && c.e.given("context") {
		return c.e.source("context") + " " + c.Context
	}
	return "--context " + c.Context
}

// contextPrincipal is connFlags.principal for the credentials of context
// nctx, named name (connFlags.contextName); "" if it has none.
func contextPrincipal(nctx *natscontext.Context, name string) string {
	if nctx.User() != "" {
		return fmt.Sprintf("user %q (from %s)", nctx.User(), name)
	}
	for _, f := range []struct{ what, ref string }{{"creds", nctx.Creds()}, {"nkey", nctx.NKey()}} {
		if path, ok := filePath(f.ref); ok {
			return fmt.Sprintf("the user of the %s file %s (from %s)", f.what, quotePath(path), name)
		}
		if f.ref != "" {
			return fmt.Sprintf("the %s of %s", f.what, name)
		}
	}
	if nctx.Token() != "" || nctx.UserJWT() != "" {
		return "the credentials of " + name
	}
	return ""
}

// filePath returns the path a credential reference names when it is a
// file (a bare path or file://), and false for data:, env://, op:// and
// nsc:// references.
func filePath(ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	if after, ok := strings.CutPrefix(ref, "file://"); ok {
		return after, true
	}
	if i := strings.Index(ref, ":"); i > 1 && !strings.ContainsAny(ref[:i], `/\`) {
		return "", false // a scheme; a one-letter one is a Windows drive
	}
	return ref, true
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
	if x := e.getenv("XDG_CONFIG_HOME"); x != "" {
		root = x
	} else if h := e.getenv("HOME"); h != "" {
		root = filepath.Join(h, ".config")
	}
	if root == "" {
		return natscontext.New(name, true)
	}
	return natscontext.NewRegistry(natscontext.NewFileBackendAt(root)).Load(context.Background(), name)
}
