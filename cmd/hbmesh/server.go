package main

import (
	"context"
	"net"
	"net/url"
	"strconv"

	"github.com/hbmesh/hbmesh/embedded"
)

func runServer(ctx context.Context, e *env, args []string) error {
	var (
		logf     logFlags
		cfg      = embedded.Config{Host: "0.0.0.0", Port: embedded.DefaultPort}
		cluster  string
		routes   []string
		httpPort int
	)
	f := newFlags("server", "hbmesh server [-a ADDR] [-p PORT] [--cluster URL --routes URL,...] [flags]", `
Run a standalone NATS server (the same nats-server, embedded) until SIGINT or
SIGTERM, for nodes and monitors to meet on. Flag names follow nats-server's.
Clustering starts when --cluster_name, --cluster or --routes is given.`, []string{
		"hbmesh server",
		"hbmesh server -p 4222 --cluster nats://0.0.0.0:6222 --cluster_name hb",
		"hbmesh server -p 4223 --cluster nats://0.0.0.0:6223 --cluster_name hb --routes nats://127.0.0.1:6222",
		"hbmesh server -js -sd /var/lib/hbmesh -m 8222",
	})
	f.String(&cfg.Host, "addr", "a", cfg.Host, "client listen `host`")
	f.Var(intFlag{&cfg.Port, -1, 65535}, "port", "p", "client `port` (-1: random)")
	f.String(&cfg.Name, "name", "n", "", "server `name` (default: generated)")
	f.Var(intFlag{&httpPort, -1, 65535}, "http_port", "m", "HTTP monitoring `port` (0: off, -1: random)")
	f.String(&cfg.Cluster.Name, "cluster_name", "", "", "cluster `name`; every server of a cluster uses the same (default \"hbmesh\" when clustering)")
	f.String(&cluster, "cluster", "", "", "cluster listen `URL`, e.g. nats://0.0.0.0:6222")
	f.Var(listFlag{&routes}, "routes", "", "cluster `URL`s of servers to route to, comma separated")
	f.Bool(&cfg.JetStream, "jetstream", "js", false, "enable JetStream")
	f.String(&cfg.StoreDir, "store_dir", "sd", "", "JetStream store `dir` (default: a temporary dir)")
	f.String(&cfg.ConfigFile, "config", "c", "", "nats-server configuration `FILE`; flags override it")
	logf.register(f)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if cfg.ConfigFile != "" {
		if err := checkFile("--config", cfg.ConfigFile); err != nil {
			return err
		}
	}
	cfg.HTTPPort = httpPort
	// A config file decides what the flags do not say explicitly.
	if cfg.ConfigFile != "" && !f.isSet("addr") {
		cfg.Host = ""
	}
	if cfg.ConfigFile != "" && !f.isSet("port") {
		cfg.Port = 0
	}
	if cluster != "" {
		u, err := url.Parse(cluster)
		if err != nil || u.Host == "" {
			return usagef("invalid value %q for flag --cluster: want nats://host:port", cluster)
		}
		h, p, err := net.SplitHostPort(u.Host)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			return usagef("invalid value %q for flag --cluster: want nats://host:port", cluster)
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
	log := logf.logger(e.stderr).With("cmd", "server")
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
