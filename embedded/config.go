package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
)

// DefaultPort is the client port used when Config.Port is 0.
const DefaultPort = 4222

// DefaultClusterPort is the cluster (route) port used when
// ClusterConfig.Port is 0.
const DefaultClusterPort = 6222

// RandomPort asks the operating system for a free port. It can be used for
// Config.Port, Config.HTTPPort and ClusterConfig.Port.
const RandomPort = -1

// DefaultHost is the listen host used when Config.Host is empty.
const DefaultHost = "127.0.0.1"

// DefaultReadyTimeout is how long Start waits for readiness when
// Config.ReadyTimeout is 0.
const DefaultReadyTimeout = 10 * time.Second

// ErrInvalidConfig is matched (errors.Is) by every error returned from
// Config.Validate, so callers can tell a bad configuration from a failure to
// start. It is the same value as every other hbmesh package's
// ErrInvalidConfig.
var ErrInvalidConfig = cfgerr.ErrInvalid

// invalid builds Validate's errors.
const invalid cfgerr.Of = "embedded"

// Config configures an embedded nats-server. The zero value is usable and
// means "all defaults"; DefaultConfig spells the defaults out.
//
// When ConfigFile is set, the file is the base and only the non-zero fields
// of Config override it, so start from Config{ConfigFile: path} rather than
// DefaultConfig() if the file should decide the host and port.
type Config struct {
	// Name is the server name, shown in logs, monitoring and to clients.
	// Default: "hbmesh-" followed by a random suffix (or the file's
	// server_name when ConfigFile sets one).
	Name string

	// Host is the client listen host. Default: DefaultHost ("127.0.0.1").
	Host string

	// Port is the client listen port. 0 means DefaultPort (4222);
	// RandomPort (-1) picks a free port, see Server.ClientURL.
	Port int

	// DontListen makes the server in-process only: no TCP client
	// listener. Clients connect with Server.ConnectOptions. A clustered
	// server needs a client listener, so DontListen cannot be combined
	// with Cluster. Default: false.
	DontListen bool

	// HTTPPort is the nats-server monitoring port (/varz, /routez, ...).
	// 0 disables monitoring; RandomPort (-1) picks a free port.
	// Default: 0 (off).
	HTTPPort int

	// Cluster optionally joins this server to a cluster. A non-empty
	// Cluster.Name enables clustering. Default: no cluster.
	Cluster ClusterConfig

	// JetStream enables JetStream. Default: false.
	JetStream bool

	// StoreDir is the JetStream store directory. Default: a temporary
	// directory created by Start and removed by Shutdown.
	StoreDir string

	// ConfigFile is an optional nats-server configuration file, read by
	// Start (not New). Non-zero fields of Config override the file.
	// Default: "" (none).
	ConfigFile string

	// MeshAccount, when set, puts every client that connects without
	// credentials into an account of this name (nats-server's
	// no_auth_user), with JetStream when JetStream is on, and sets up a
	// system account, SystemAccount, that exports to it its own client
	// DISCONNECT advisories (wire.DisconnectAdvisorySubject) and nothing
	// else. That is what a monitor's crash fast path needs; a server
	// without accounts publishes no advisory its clients can see. Clients
	// that present credentials are refused: the mesh account's only user
	// is an nkey whose seed nobody has. It excludes ConfigFile, whose
	// accounts are the file's business (docs/SECURITY.md says what one
	// needs). hbmesh's own servers use DefaultMeshAccount. Default: ""
	// (no accounts: nats-server's global account).
	MeshAccount string

	// Options, when non-nil, is called once with the final server options
	// while New builds the server (not at Start), after every field above
	// has been applied; with ConfigFile, at Start, after the file too. It
	// is the escape hatch for settings Config does not cover (TLS,
	// accounts, limits). Default: nil.
	Options func(*server.Options)

	// Logger receives the server's logs: notices at Info, warnings at
	// Warn, errors and fatals at Error, debug and trace at Debug.
	// Default: a logger that discards everything.
	Logger *slog.Logger

	// ReadyTimeout bounds how long Start waits for the server to accept
	// connections. Default: DefaultReadyTimeout (10s).
	ReadyTimeout time.Duration
}

// ClusterConfig configures clustering. See Config.Cluster.
type ClusterConfig struct {
	// Name is the cluster name; every server in a cluster must use the
	// same one. Non-empty enables clustering.
	Name string

	// Host is the cluster listen host. Default: the client Host.
	Host string

	// Port is the cluster listen port. 0 means DefaultClusterPort (6222);
	// RandomPort (-1) picks a free port, see Server.ClusterURL.
	Port int

	// Routes are the cluster URLs (nats-route://host:port) of servers to
	// connect to. One seed is enough: the rest of the mesh is learned by
	// gossip. Default: none.
	Routes []string
}

// DefaultConfig returns a Config with every default spelled out: a
// loopback listener on DefaultPort, no cluster, no JetStream, a discard
// logger and a 10s ready timeout. Name is left empty so New picks a unique
// one.
func DefaultConfig() Config {
	return Config{
		Host:         DefaultHost,
		Port:         DefaultPort,
		Logger:       slog.New(slog.DiscardHandler),
		ReadyTimeout: DefaultReadyTimeout,
	}
}

// Validate reports the first invalid field, naming it and its value. The
// returned error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	if strings.ContainsAny(c.Name, " \t\r\n") {
		return invalid.Field("Name", c.Name, "must not contain whitespace")
	}
	if err := checkPort("Port", c.Port); err != nil {
		return err
	}
	if err := checkPort("HTTPPort", c.HTTPPort); err != nil {
		return err
	}
	if c.MeshAccount != "" {
		if r := validAccount(c.MeshAccount); r != "" {
			return invalid.Field("MeshAccount", c.MeshAccount, r)
		}
		if c.ConfigFile != "" {
			return invalid.Field("MeshAccount", c.MeshAccount, fmt.Sprintf("with ConfigFile %q: the file decides the accounts", c.ConfigFile))
		}
	}
	if c.ReadyTimeout < 0 {
		return invalid.Field("ReadyTimeout", c.ReadyTimeout, "must not be negative")
	}
	cl := c.Cluster
	if err := checkPort("Cluster.Port", cl.Port); err != nil {
		return err
	}
	if strings.ContainsAny(cl.Name, " \t\r\n") {
		return invalid.Field("Cluster.Name", cl.Name, "must not contain whitespace")
	}
	clusterSet := cl.Name != "" || cl.Host != "" || cl.Port != 0 || len(cl.Routes) > 0
	if clusterSet && cl.Name == "" && c.ConfigFile == "" {
		// Without a file that defines the cluster, a port or routes with
		// no name would silently be ignored.
		return invalid.Field("Cluster.Name", nil, "is empty but other Cluster fields are set; a name enables clustering")
	}
	if c.DontListen && clusterSet {
		return invalid.Field("DontListen", nil, fmt.Sprintf("with Cluster %q: a clustered server needs a client listener", cl.Name))
	}
	for i, r := range cl.Routes {
		if _, err := parseRoute(r); err != nil {
			return invalid.Wrap(fmt.Sprintf("Cluster.Routes[%d]", i), r, err)
		}
	}
	return nil
}

func checkPort(field string, p int) error {
	if p < RandomPort || p > 65535 {
		return invalid.Field(field, p, fmt.Sprintf("is out of range (want 1-65535, 0 for default or %d for random)", RandomPort))
	}
	return nil
}

func parseRoute(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "nats-route", "nats", "tls":
	default:
		return nil, fmt.Errorf("scheme %q, want nats-route://host:port", u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return nil, fmt.Errorf("want nats-route://host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("port %q out of range", port)
	}
	return u, nil
}

// options applies c onto base (empty, or loaded from ConfigFile): explicit
// fields override, then defaults fill what is still unset. name is the
// default server name chosen by New.
func (c Config) options(base *server.Options, name string) (*server.Options, error) {
	o := base
	switch {
	case c.Name != "":
		o.ServerName = c.Name
	case o.ServerName == "":
		o.ServerName = name
	}
	switch {
	case c.Host != "":
		o.Host = c.Host
	case o.Host == "":
		o.Host = DefaultHost
	}
	switch {
	case c.Port != 0:
		o.Port = c.Port
	case o.Port == 0:
		o.Port = DefaultPort
	}
	if c.DontListen {
		o.DontListen = true
	}
	if c.HTTPPort != 0 {
		o.HTTPPort = c.HTTPPort
	}
	cl := c.Cluster
	if cl.Name != "" {
		o.Cluster.Name = cl.Name
		if o.Cluster.Port == 0 && cl.Port == 0 {
			o.Cluster.Port = DefaultClusterPort
		}
	}
	if cl.Port != 0 {
		o.Cluster.Port = cl.Port
	}
	switch {
	case cl.Host != "":
		o.Cluster.Host = cl.Host
	case o.Cluster.Host == "" && o.Cluster.Name != "":
		o.Cluster.Host = o.Host
	}
	for _, r := range cl.Routes {
		u, err := parseRoute(r)
		if err != nil {
			return nil, invalid.Wrap("Cluster.Routes", r, err)
		}
		o.Routes = append(o.Routes, u)
	}
	if c.JetStream {
		o.JetStream = true
	}
	if c.StoreDir != "" {
		o.StoreDir = c.StoreDir
	}
	// A library must never install process-wide signal handlers.
	o.NoSigs = true
	if c.Options != nil {
		c.Options(o)
	}
	if o.DontListen && (o.Cluster.Port != 0 || o.Cluster.Name != "") {
		return nil, invalid.Field("DontListen", nil, fmt.Sprintf("with cluster %q: a clustered server needs a client listener", o.Cluster.Name))
	}
	return o, nil
}
