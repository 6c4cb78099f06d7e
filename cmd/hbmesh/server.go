package main

import (
	"context"
	"net"
	"net/url"
	"strconv"

	"github.com/hbmesh/hbmesh/embedded"
)

// serverCmd is `hbmesh server`. Its flag names follow nats-server's.
type serverCmd struct {
	Addr        string   `short:"a" default:"0.0.0.0" placeholder:"HOST" help:"client listen host"`
	Port        int      `short:"p" default:"${embedded_port}" min:"-1" max:"65535" placeholder:"PORT" help:"client port (-1: random)"`
	Name        string   `short:"n" placeholder:"NAME" help:"server name (default: generated)"`
	HTTPPort    int      `name:"http_port" short:"m" min:"-1" max:"65535" placeholder:"PORT" help:"HTTP monitoring port (0: off, -1: random)"`
	ClusterName string   `name:"cluster_name" placeholder:"NAME" help:"cluster name; every server of a cluster uses the same (default \"hbmesh\" when clustering)"`
	Cluster     string   `placeholder:"URL" help:"cluster listen URL, e.g. nats://0.0.0.0:6222"`
	Routes      []string `placeholder:"URL" help:"cluster URLs of servers to route to, comma separated; repeatable"`
	JetStream   bool     `name:"jetstream" aliases:"js" help:"enable JetStream"`
	StoreDir    string   `name:"store_dir" aliases:"sd" placeholder:"DIR" help:"JetStream store DIR (default: a temporary dir)"`
	Config      string   `short:"c" placeholder:"FILE" help:"nats-server configuration FILE; flags override it"`

	Log logFlags `embed:"" group:"log"`
}

func (c *serverCmd) Help() string {
	return `Run a standalone NATS server (the same nats-server, embedded) until SIGINT, SIGTERM or SIGHUP, for nodes and monitors to meet on. Flag names follow nats-server's. Clustering starts when --cluster_name, --cluster or --routes is given.`
}

func (c *serverCmd) examples() []string {
	return []string{
		"hbmesh server",
		"hbmesh server -p 4222 --cluster nats://0.0.0.0:6222 --cluster_name hb",
		"hbmesh server -p 4223 --cluster nats://0.0.0.0:6223 --cluster_name hb --routes nats://127.0.0.1:6222",
		"hbmesh server --js --sd /var/lib/hbmesh -m 8222",
	}
}

func (c *serverCmd) Run(ctx context.Context, e *env) error {
	cfg := embedded.Config{Host: c.Addr, Port: c.Port, Name: c.Name, JetStream: c.JetStream, StoreDir: c.StoreDir, ConfigFile: c.Config}
	cfg.Cluster.Name = c.ClusterName
	cluster, routes, httpPort := c.Cluster, c.Routes, c.HTTPPort
	if cfg.ConfigFile != "" {
		if err := checkFile(e.source("config"), cfg.ConfigFile); err != nil {
			return err
		}
	}
	cfg.HTTPPort = httpPort
	// A config file decides what the flags do not say explicitly.
	if cfg.ConfigFile != "" && !e.given("addr") {
		cfg.Host = ""
	}
	if cfg.ConfigFile != "" && !e.given("port") {
		cfg.Port = 0
	}
	if cluster != "" {
		u, err := url.Parse(cluster)
		if err != nil || u.Host == "" {
			return usagef("%s %s: want nats://host:port", e.source("cluster"), quoteURL(cluster))
		}
		h, p, err := net.SplitHostPort(u.Host)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			return usagef("%s %s: want nats://host:port", e.source("cluster"), quoteURL(cluster))
		}
		cfg.Cluster.Host, cfg.Cluster.Port = h, n
		if n == 0 {
			cfg.Cluster.Port = embedded.RandomPort
		}
	}
	for i, r := range routes {
		// nats-server accepts nats:// routes; say so explicitly.
		if u, err := url.Parse(r); err == nil && u.Scheme == "nats" {
			routes[i] = "nats-route://" + u.Host
		}
	}
	cfg.Cluster.Routes = routes
	if cfg.Cluster.Name == "" && (cluster != "" || len(routes) > 0) && cfg.ConfigFile == "" {
		cfg.Cluster.Name = "hbmesh"
	}
	if cfg.ConfigFile == "" {
		// The file decides the accounts; without one, the mesh gets its
		// own, which sees its DISCONNECT advisories.
		cfg.MeshAccount = embedded.DefaultMeshAccount
	}
	log := c.Log.logger(e.stderr).With("cmd", "server")
	cfg.Logger = log
	srv, err := embedded.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Shutdown()
	attrs := []any{"url", srv.ClientURL(), "name", srv.NATS().Name()}
	if u := srv.ClusterURL(); u != "" {
		attrs = append(attrs, "cluster", u)
	}
	if u := srv.MonitorURL(); u != "" {
		attrs = append(attrs, "http", u)
	}
	log.Info("NATS server ready", attrs...)
	<-ctx.Done()
	log.Info("NATS server shutting down")
	return nil
}
