package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/redact"
	"github.com/hbmesh/hbmesh/internal/sectest"
)

// testUser is a NATS user with every kind of key material: an nkey seed,
// and a user JWT signed by acct, in a creds file.
type testUser struct {
	seed, pub string
	jwt       string
	creds     string // the creds file's contents
}

func newTestUser(t *testing.T, acct nkeys.KeyPair) testUser {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	ujwt, err := uc.Encode(acct)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	return testUser{seed: string(seed), pub: pub, jwt: ujwt, creds: string(creds)}
}

// startOperatorServer starts a server in operator mode, trusting one
// account, and returns it with a user of that account.
func startOperatorServer(t *testing.T) (*embedded.Server, testUser) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	if _, err := oc.Encode(okp); err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) {
			o.TrustedOperators = []*jwt.OperatorClaims{oc}
			o.AccountResolver = resolver
		}
	})
	return srv, newTestUser(t, akp)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newContextHome makes a config home, for XDG_CONFIG_HOME, with the nats
// CLI's context folder in it, and returns it with a function that saves
// a context's JSON there under a name.
func newContextHome(t *testing.T) (string, func(name, body string)) {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return home, func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// contextJSON is the JSON of a context for url with the fields kv: name,
// value, name, value, ...
func contextJSON(url string, kv ...string) string {
	m := map[string]string{"url": url}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// natsContextAdd saves a context with the real nats CLI, as an operator
// would, in the config home home, and returns the context's JSON.
func natsContextAdd(t *testing.T, home string, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(natstest.Tool(t, "nats"), append([]string{"context", "add"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+home, "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nats context add %q: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(filepath.Join(home, "nats", "context", args[0]+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestContextEmbeddedCredentials: a context saved by `nats context add
// --embed` holds its creds or nkey inline, as a data: URL; hbmesh connects
// with it, with the files it came from gone.
func TestContextEmbeddedCredentials(t *testing.T) {
	opSrv, user := startOperatorServer(t)
	nkUser := newTestUser(t, func() nkeys.KeyPair { kp, _ := nkeys.CreateAccount(); return kp }())
	nkSrv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: nkUser.pub}} }
	})
	for _, tc := range []struct {
		name, url, flag, material string
	}{
		{"creds", opSrv.ClientURL(), "--creds", user.creds},
		{"nkey", nkSrv.ClientURL(), "--nkey", nkUser.seed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			file := writeFile(t, "key", tc.material)
			doc := natsContextAdd(t, home, "lab", "--server", tc.url, tc.flag, file, "--embed")
			if v, _ := doc[tc.name].(string); !strings.HasPrefix(v, "data:") {
				t.Fatalf("nats context add --embed saved %s %q, want a data: URL", tc.name, v)
			}
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			environ := map[string]string{"XDG_CONFIG_HOME": home}
			nd := startEnv(t, environ, "node", "--context", "lab", "--id", "inline-"+tc.name, "--interval", "100ms")
			// In operator mode the node's interest is in its account, not
			// the one natstest.WaitInterest watches: probe until it answers.
			var stdout, stderr string
			waitFor(t, natstest.Timeout, "the node to answer a probe through the context", func() bool {
				var code int
				code, stdout, stderr = runSync(t, func(k string) string { return environ[k] }, "probe", "--context", "lab", "inline-"+tc.name)
				return code == exitOK
			})
			if !strings.Contains(stdout, "inline-"+tc.name+": alive") {
				t.Fatalf("probe --context lab: stdout %q, stderr %q", stdout, stderr)
			}
			if code := nd.stop(t); code != exitOK {
				t.Fatalf("node exit %d; stderr:\n%s", code, nd.stderr)
			}
		})
	}
}

// TestSecretsNeverPrinted feeds each kind of secret (password, token, nkey
// seed, creds file contents, the data: URLs `nats context add --embed`
// writes, user:password and a token in a URL) through every failure path
// hbmesh has before and while connecting, and checks that none of them
// appears on stdout or stderr, logs included (--log-level debug).
func TestSecretsNeverPrinted(t *testing.T) {
	akp, _ := nkeys.CreateAccount()
	user := newTestUser(t, akp)
	const (
		password = "pw-S3cr3t-Passw0rd"
		token    = "tok-S3cr3t-T0ken"
		urlPass  = "url-S3cr3t-Passw0rd"
		urlToken = "url-S3cr3t-T0ken"
		hookPass = "hook-S3cr3t-Passw0rd"
	)
	dataCreds := "data:;base64," + base64.StdEncoding.EncodeToString([]byte(user.creds))
	dataNkey := "data:;base64," + base64.StdEncoding.EncodeToString([]byte(user.seed))
	badDataCreds := "data:;base64," + base64.StdEncoding.EncodeToString([]byte("not creds "+password))
	secrets := []string{password, token, urlPass, urlToken, hookPass, user.seed, user.jwt,
		strings.TrimPrefix(dataCreds, "data:;base64,"), strings.TrimPrefix(dataNkey, "data:;base64,"),
		strings.TrimPrefix(badDataCreds, "data:;base64,")}

	// A server that refuses all of them: it knows one user, hb.
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.Username, o.Password = "hb", "secret" }
	})
	refusing := srv.ClientURL()
	hostPort := strings.TrimPrefix(refusing, "nats://")
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))

	credsFile := writeFile(t, "user.creds", user.creds)
	seedFile := writeFile(t, "user.nk", user.seed)
	badSeedFile := writeFile(t, "bad.nk", "SU"+password)
	badCredsFile := writeFile(t, "bad.creds", "-----BEGIN NATS USER JWT-----\n"+password+"\n------END NATS USER JWT------\n")
	other := newTestUser(t, akp)
	secrets = append(secrets, other.seed)
	mixedCredsFile := writeFile(t, "mixed.creds", strings.Replace(user.creds, user.seed, other.seed, 1))
	pki := sectest.NewPKI(t)
	for _, key := range []string{pki.ClientKey, pki.ServerKey} {
		b, err := os.ReadFile(key)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, strings.Split(string(b), "\n")[1]) // a line of the key's base64
	}

	home, writeCtx := newContextHome(t)
	for _, c := range []struct{ name, url string }{{"dead", "nats://" + dead}, {"refusing", refusing}} {
		writeCtx(c.name+"-password", contextJSON(c.url, "user", "someone", "password", password))
		writeCtx(c.name+"-token", contextJSON(c.url, "token", token))
		writeCtx(c.name+"-creds", contextJSON(c.url, "creds", dataCreds))
		writeCtx(c.name+"-nkey", contextJSON(c.url, "nkey", dataNkey))
	}
	writeCtx("bad-json", `{"url": "nats://`+dead+`", "password": "`+password+`", "token": "`+token+`",`)
	writeCtx("bad-creds", contextJSON("nats://"+dead, "creds", badDataCreds))
	writeCtx("bad-nkey", contextJSON("nats://"+dead, "nkey", "data:;base64,"+base64.StdEncoding.EncodeToString([]byte("SU"+password))))
	writeCtx("bad-url", contextJSON("nats:/u:"+urlPass+"@"+dead))
	writeCtx("bad-base64", contextJSON("nats://"+dead, "nkey", "data:;base64,!"+user.seed))
	writeCtx("seed-as-creds", contextJSON("nats://"+dead, "creds", seedFile))
	ctxEnv := map[string]string{"XDG_CONFIG_HOME": home}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string // in stderr: the path taken
	}{
		// Unreachable server.
		{"dead: password", nil, []string{"-s", dead, "--user", "u", "--password", password}, exitFailure, "connection refused"},
		{"dead: token", nil, []string{"-s", dead, "--token", token}, exitFailure, "connection refused"},
		{"dead: nkey", nil, []string{"-s", dead, "--nkey", seedFile}, exitFailure, "connection refused"},
		{"dead: creds", nil, []string{"-s", dead, "--creds", credsFile}, exitFailure, "connection refused"},
		{"dead: url password", nil, []string{"-s", "nats://u:" + urlPass + "@" + dead}, exitFailure, "connection refused"},
		{"dead: url token", nil, []string{"-s", "nats://" + urlToken + "@" + dead}, exitFailure, "connection refused"},
		{"dead: env", map[string]string{"NATS_URL": "nats://u:" + urlPass + "@" + dead, "NATS_USER": "u", "NATS_PASSWORD": password}, nil, exitFailure, "connection refused"},
		{"dead: context password", ctxEnv, []string{"--context", "dead-password"}, exitFailure, "connection refused"},
		{"dead: context token", ctxEnv, []string{"--context", "dead-token"}, exitFailure, "connection refused"},
		{"dead: context creds", ctxEnv, []string{"--context", "dead-creds"}, exitFailure, "connection refused"},
		{"dead: context nkey", ctxEnv, []string{"--context", "dead-nkey"}, exitFailure, "connection refused"},
		// Authorization refused by a real server.
		{"refused: password", nil, []string{"-s", refusing, "--user", "hb", "--password", password}, exitFailure, `Authorization Violation (the server does not accept user "hb" (--user))`},
		{"refused: token", nil, []string{"-s", refusing, "--token", token}, exitFailure, "Authorization Violation (the server does not accept the token of --token)"},
		{"refused: nkey", nil, []string{"-s", refusing, "--nkey", seedFile}, exitFailure, "nkeys not supported by the server"},
		{"refused: creds", nil, []string{"-s", refusing, "--creds", credsFile}, exitFailure, "Authorization Violation"},
		{"refused: url password", nil, []string{"-s", "nats://hb:" + urlPass + "@" + hostPort}, exitFailure, `Authorization Violation (the server does not accept user "hb" of the --server URL)`},
		{"refused: url token", nil, []string{"-s", "nats://" + urlToken + "@" + hostPort}, exitFailure, "Authorization Violation"},
		{"refused: context password", ctxEnv, []string{"--context", "refusing-password"}, exitFailure, "Authorization Violation"},
		{"refused: context token", ctxEnv, []string{"--context", "refusing-token"}, exitFailure, "Authorization Violation"},
		{"refused: context creds", ctxEnv, []string{"--context", "refusing-creds"}, exitFailure, "Authorization Violation"},
		{"refused: context nkey", ctxEnv, []string{"--context", "refusing-nkey"}, exitFailure, "nkeys not supported by the server"},
		// Bad contexts.
		{"context: bad json", ctxEnv, []string{"--context", "bad-json"}, exitUsage, "--context bad-json"},
		{"context: bad creds", ctxEnv, []string{"--context", "bad-creds"}, exitUsage, "--context bad-creds: creds"},
		{"context: bad nkey", ctxEnv, []string{"--context", "bad-nkey"}, exitUsage, "--context bad-nkey"},
		{"context: bad base64", ctxEnv, []string{"--context", "bad-base64"}, exitUsage, "--context bad-base64"},
		// Bad files, and key material where a file belongs.
		{"file: bad seed", nil, []string{"-s", dead, "--nkey", badSeedFile}, exitUsage, `--nkey "` + badSeedFile + `": holds no user nkey seed`},
		{"file: bad creds", nil, []string{"-s", refusing, "--creds", badCredsFile}, exitUsage, `--creds "` + badCredsFile + `": not a credentials file: it holds no user JWT`},
		{"file: creds of two users", nil, []string{"--creds", mixedCredsFile}, exitUsage, `--creds "` + mixedCredsFile + `": its seed is not the key of its JWT's user`},
		{"env: seed as creds", map[string]string{"NATS_CREDS": seedFile}, nil, exitUsage, `$NATS_CREDS "` + seedFile + `": not a credentials file: it holds no user JWT`},
		{"env: bad seed", map[string]string{"NATS_NKEY": badCredsFile}, nil, exitUsage, `$NATS_NKEY "` + badCredsFile + `": holds no user nkey seed`},
		{"env: CA not PEM", map[string]string{"NATS_CA": badSeedFile}, nil, exitUsage, `$NATS_CA "` + badSeedFile + `": holds no PEM certificate`},
		{"env: key as CA", map[string]string{"NATS_CA": pki.ClientKey}, nil, exitUsage, `$NATS_CA "` + pki.ClientKey + `": holds no PEM certificate`},
		{"env: cert not PEM", map[string]string{"NATS_CERT": badSeedFile, "NATS_KEY": pki.ClientKey}, nil, exitUsage, `$NATS_CERT "` + badSeedFile + `": holds no PEM certificate`},
		{"env: key not PEM", map[string]string{"NATS_CERT": pki.ClientCert, "NATS_KEY": badSeedFile}, nil, exitUsage, `$NATS_KEY "` + badSeedFile + `": holds no PEM private key`},
		{"env: cert as key", map[string]string{"NATS_CERT": pki.ClientCert, "NATS_KEY": pki.ClientCert}, nil, exitUsage, `$NATS_KEY "` + pki.ClientCert + `": holds no PEM private key`},
		{"env: key of another cert", map[string]string{"NATS_CERT": pki.ClientCert, "NATS_KEY": pki.ServerKey}, nil, exitUsage, `: not a certificate and its key: tls: private key does not match public key`},
		{"context: seed as creds", ctxEnv, []string{"--context", "seed-as-creds"}, exitUsage, `--creds (from --context seed-as-creds) "` + seedFile + `": not a credentials file`},
		{"env: no such context", map[string]string{"NATS_CONTEXT": "nosuch", "XDG_CONFIG_HOME": home, "NATS_TOKEN": token}, nil, exitUsage, "$NATS_CONTEXT nosuch: "},
		{"env: context with bad creds", map[string]string{"NATS_CONTEXT": "bad-creds", "XDG_CONFIG_HOME": home}, nil, exitUsage, "$NATS_CONTEXT bad-creds: creds"},
		{"file: seed for --nkey", nil, []string{"--nkey", user.seed}, exitUsage, "--nkey (not shown: it holds key material"},
		{"file: data URL for --creds", nil, []string{"--creds", dataCreds}, exitUsage, "--creds (not shown"},
		{"env: creds contents", map[string]string{"NATS_CREDS": user.creds}, nil, exitUsage, "$NATS_CREDS (not shown"},
		{"env: seed", map[string]string{"NATS_NKEY": user.seed}, nil, exitUsage, "$NATS_NKEY (not shown"},
		// Bad environment variables beside secret ones.
		{"env: bad timeout", map[string]string{"NATS_TIMEOUT": "soon", "NATS_USER": "u", "NATS_PASSWORD": password, "NATS_URL": "nats://u:" + urlPass + "@" + dead}, nil, exitUsage, `NATS_TIMEOUT="soon"`},
		{"env: password without user", map[string]string{"NATS_PASSWORD": password}, nil, exitUsage, "$NATS_PASSWORD needs --user"},
		{"env: token and user", map[string]string{"NATS_TOKEN": token, "NATS_USER": "u"}, nil, exitUsage, "are exclusive"},
		{"env: unparsable url", map[string]string{"NATS_URL": "nats://u:" + urlPass + "@" + "127.0.0.1:port"}, nil, exitUsage, `$NATS_URL "nats://xxxxx@127.0.0.1:port": does not parse`},
		{"env: url with one slash", map[string]string{"NATS_URL": "nats:/u:" + urlPass + "@" + dead}, nil, exitUsage, `$NATS_URL "nats:/xxxxx@` + dead + `": more than a host and port`},
		{"flag: token url with one slash", nil, []string{"-s", "nats://" + dead + ",nats:/" + urlToken + "@" + dead}, exitUsage, `--server "nats:/xxxxx@`},
		{"context: url with one slash", ctxEnv, []string{"--context", "bad-url"}, exitUsage, `--server (from --context bad-url) "nats:/xxxxx@`},
		{"env: bad interval", map[string]string{"HBMESH_INTERVAL": "5x", "NATS_TOKEN": token}, nil, exitUsage, `HBMESH_INTERVAL="5x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			args := append([]string{"node", "--id", "n1", "--log-level", "debug"}, tt.args...)
			code, stdout, stderr := runSync(t, getenv, args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if code == exitUsage && strings.Count(stderr, "\n") != 1 {
				t.Errorf("a usage error of %d lines, want one:\n%s", strings.Count(stderr, "\n"), stderr)
			}
			for _, s := range secrets {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("the output holds the secret %q:\nstdout: %s\nstderr: %s", s, stdout, stderr)
				}
			}
		})
	}

	// A webhook URL's credentials, refused by a usage check.
	code, _, stderr := runSync(t, nil, "monitor", "--webhook", "ftp://u:"+hookPass+"@hooks.example")
	if code != exitUsage || strings.Contains(stderr, hookPass) || !strings.Contains(stderr, "--webhook") {
		t.Errorf("--webhook: exit %d, stderr %q", code, stderr)
	}
	// Header values and URL tokens of the alerting outputs, through the
	// usage checks that refuse them or the flags beside them. A header
	// written as "Name: value" cut at its first '=' (a base64 token ends
	// in one) would put the value in the name.
	colon := "Authorization: Bearer " + hookPass + "=="
	webhook, am := "https://hooks.example/x", "https://am.example"
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string // in stderr: the path taken
	}{
		{nil, []string{"monitor", "--webhook", "https://hooks.example/" + hookPass, "--webhook-header", "Authorization=env:NOPE"}, "$NOPE is empty"},
		{nil, []string{"monitor", "--webhook", webhook, "--webhook-header", "Authorization Bearer=" + hookPass}, "--webhook-header: not NAME=VALUE"},
		{nil, []string{"monitor", "--alertmanager", "am.example/" + hookPass}, "--alertmanager (not shown)"},
		{nil, []string{"monitor", "--alertmanager", "https://am.example/?token=" + hookPass}, `--alertmanager "https://am.example": a query or fragment (not shown)`},
		{nil, []string{"monitor", "--alertmanager", "https://am.example/?token=" + hookPass, "--alert-header", "X-Token=" + hookPass, "--alert-label", "peer=x"}, `"peer" is set by hbmesh`},
		{nil, []string{"notify", "--stream", "EV", "--webhook", "ftp://hooks.example/" + hookPass, "--webhook-header", "X-Token=" + hookPass}, "--webhook"},
		{nil, []string{"notify", "--stream", "EV", "--alertmanager", "https://u:" + hookPass + "@am.example", "--alert-header", "X-Token=@/nonexistent/" + "tokenfile"}, "/nonexistent/tokenfile"},
		{nil, []string{"monitor", "--webhook", webhook, "--webhook-header", colon}, "--webhook-header: not NAME=VALUE"},
		{nil, []string{"monitor", "--alertmanager", am, "--alert-header", colon}, "--alert-header: not NAME=VALUE"},
		{map[string]string{"HBMESH_WEBHOOK_HEADER": colon}, []string{"monitor", "--webhook", webhook}, "$HBMESH_WEBHOOK_HEADER: not NAME=VALUE"},
		{map[string]string{"HBMESH_ALERT_HEADER": colon}, []string{"monitor", "--alertmanager", am}, "$HBMESH_ALERT_HEADER: not NAME=VALUE"},
		{nil, []string{"notify", "--stream", "EV", "--webhook", webhook, "--webhook-header", colon}, "--webhook-header: not NAME=VALUE"},
		{nil, []string{"notify", "--stream", "EV", "--alertmanager", am, "--alert-header", colon}, "--alert-header: not NAME=VALUE"},
		{map[string]string{"HBMESH_WEBHOOK_HEADER": colon}, []string{"notify", "--stream", "EV", "--webhook", webhook}, "$HBMESH_WEBHOOK_HEADER: not NAME=VALUE"},
		{map[string]string{"HBMESH_ALERT_HEADER": colon}, []string{"notify", "--stream", "EV", "--alertmanager", am}, "$HBMESH_ALERT_HEADER: not NAME=VALUE"},
	} {
		code, stdout, stderr := runSync(t, func(k string) string { return tc.env[k] }, tc.args...)
		if code != exitUsage || strings.Contains(stdout+stderr, hookPass) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q %v: exit %d, stderr %q; want exit %d and %q, without the secret", tc.args, tc.env, code, stderr, exitUsage, tc.want)
		}
	}
}

// TestRedactURL: every URL a message shows goes through redact.URL
// (internal/redact has its cases): quoteURL is its quoted form, and
// redactURLs and redactIn apply it to lists and messages.
func TestRedactURL(t *testing.T) {
	for _, in := range []string{"nats://127.0.0.1:4222", "nats://u:pw@h:4222", "nats://tok@h:4222", "nats:/u:pw@h:4222"} {
		if got, want := quoteURL(in), strconv.Quote(redact.URL(in)); got != want {
			t.Errorf("quoteURL(%q) = %s, want %s", in, got, want)
		}
	}
	if got := redactURLs("nats://a:pw@h1, nats://h2,tok@h3"); got != "nats://a:xxxxx@h1,nats://h2,nats://redacted@h3" {
		t.Errorf("redactURLs: %q", got)
	}
	if got := redactIn(`parse "nats://a:pw@h1:x": bad port`, "nats://h0,nats://a:pw@h1:x"); got != `parse "nats://xxxxx@h1:x": bad port` {
		t.Errorf("redactIn: %q", got)
	}
	// hbmesh server --cluster and hbmesh healthcheck --url show their URL
	// redacted too.
	for _, args := range [][]string{{"server", "--cluster", "nats://u:pw-S3cr3t@h:port"}, {"healthcheck", "--url", "ftp://u:pw-S3cr3t@h/livez"}} {
		code, stdout, stderr := runSync(t, nil, args...)
		if code != exitUsage || strings.Contains(stdout+stderr, "pw-S3cr3t") || !strings.Contains(stderr, "xxxxx@h") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
	// So does hbmesh bench -s that cannot connect.
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	code, stdout, stderr := runSync(t, nil, "bench", "probe", "--quick", "-s", "nats://u:pw-S3cr3t@"+dead)
	if code != exitFailure || strings.Contains(stdout+stderr, "pw-S3cr3t") || !strings.Contains(stderr, "xxxxx@"+dead) {
		t.Errorf("bench probe -s: exit %d, stderr %q", code, stderr)
	}
}

// TestTokenURLNotLogged: a node and a monitor connected with a token in
// the URL, which nats.go's own redaction shows, log the URL redacted when
// they connect and when they reconnect after a server restart, and the
// monitor's metrics do not carry it.
func TestTokenURLNotLogged(t *testing.T) {
	const token = "tok-S3cr3t-In-URL"
	port := freePort(t)
	startServer := func() *embedded.Server {
		return natstest.Start(t, func(c *embedded.Config) {
			c.Port = port
			c.Options = func(o *server.Options) { o.Authorization = token }
		})
	}
	srv := startServer()
	url := "nats://" + token + "@" + strings.TrimPrefix(srv.ClientURL(), "nats://")
	mon := start(t, "monitor", "-s", url, "--id", "m1", "--http", "127.0.0.1:0", "--log-level", "debug")
	base := "http://" + logValue(t, mon, "http server listening", "addr")
	nd := start(t, "node", "-s", url, "--id", "n1", "--interval", "100ms", "--log-level", "debug")
	natstest.WaitInterest(t, srv, "hb.n1.probe")

	// A restart on the same port: both reconnect, and say so.
	srv.Shutdown()
	srv = startServer()
	for name, p := range map[string]*proc{"node": nd, "monitor": mon} {
		waitFor(t, 20*time.Second, name+" to log its reconnect", func() bool {
			return strings.Contains(p.stderr.String(), "NATS reconnected")
		})
	}
	waitFor(t, 20*time.Second, "the monitor to resume verdicts", func() bool {
		return strings.Contains(mon.stderr.String(), "NATS connection up")
	})
	natstest.WaitInterest(t, srv, "hb.n1.probe")

	code, metrics := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	if c := nd.stop(t); c != exitOK {
		t.Fatalf("node exit %d; stderr:\n%s", c, nd.stderr)
	}
	if c := mon.stop(t); c != exitOK {
		t.Fatalf("monitor exit %d; stderr:\n%s", c, mon.stderr)
	}
	for what, out := range map[string]string{"node": nd.stderr.String(), "monitor": mon.stderr.String() + mon.stdout.String(), "/metrics": metrics} {
		if strings.Contains(out, token) {
			t.Errorf("%s shows the token:\n%s", what, out)
		}
	}
	for what, out := range map[string]string{"node": nd.stderr.String(), "monitor": mon.stderr.String()} {
		if !strings.Contains(out, "NATS connected") || !strings.Contains(out, "redacted@") {
			t.Errorf("%s logged no redacted URL (nothing checked):\n%s", what, out)
		}
	}
}
