package sectest_test

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/sectest"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestTLS: with the users template and mutual TLS, a real node and monitor
// connect with a CA and client certificate, the monitor sees the node,
// and clients without TLS, without the CA or without a client
// certificate are refused.
func TestTLS(t *testing.T) {
	pki := sectest.NewPKI(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CaFile: pki.CA, Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, usersConf, func(c *embedded.Config) {
		c.Options = func(o *server.Options) {
			o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, true, 2
		}
	})
	url := s.ClientURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("client URL %q, want tls://", url)
	}
	login := forms()[0].login
	mtls := []nats.Option{nats.RootCAs(pki.CA), nats.ClientCert(pki.ClientCert, pki.ClientKey)}

	mon := connect(t, url, append(mtls, login("monitor1"), nats.CustomInboxPrefix(monitorInbox))...)
	_, rec := startMonitor(t, mon.Conn)
	a := connect(t, url, append(mtls, login("node-a"))...)
	if !a.TLSRequired() {
		t.Fatal("node connection is not TLS")
	}
	startNode(t, a.Conn, "node-a", nil)
	rec.waitFor(t, 0, "node-a", monitor.StateAlive, monitor.ReasonFirstBeat)

	t.Run("plaintext", func(t *testing.T) {
		// Speak the protocol in the clear, as a client that ignores the
		// server's tls_required would: the server must not accept it.
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tls://"), deadline)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(deadline))
		r := bufio.NewReader(c)
		info, err := r.ReadString('\n')
		if err != nil || !strings.Contains(info, `"tls_required":true`) {
			t.Fatalf("INFO %q, %v; want tls_required", info, err)
		}
		if _, err := c.Write([]byte("CONNECT {\"user\":\"node-a\",\"pass\":\"node-a-example-password\"}\r\nPUB hb.node-a 1\r\nx\r\nPING\r\n")); err != nil {
			return // refused already
		}
		for {
			line, err := r.ReadString('\n')
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server neither refused nor served a plaintext client within %v", deadline)
			}
			if err != nil {
				return // the server hung up
			}
			if strings.HasPrefix(line, "PONG") || strings.HasPrefix(line, "+OK") {
				t.Fatalf("plaintext client was served: %q", line)
			}
		}
	})

	refused := []struct {
		name string
		opts []nats.Option
	}{
		{"no TLS options", []nats.Option{login("node-a")}},
		{"no client certificate", []nats.Option{login("node-a"), nats.RootCAs(pki.CA)}},
		{"unknown CA", []nats.Option{login("node-a"), nats.ClientCert(pki.ClientCert, pki.ClientKey)}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			nc, err := nats.Connect(url, append(c.opts, nats.Timeout(deadline))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("refused for credentials, not TLS: %v", err)
			}
		})
	}
}
