package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultHealthURL is the readiness probe of a monitor run with
// --http 127.0.0.1:8080 (or 0.0.0.0:8080) in the same container.
const defaultHealthURL = "http://127.0.0.1:8080/readyz"

// runHealthcheck GETs a URL and exits 0 on 2xx. It exists for container
// images built FROM scratch, where a HEALTHCHECK has no shell or curl.
func runHealthcheck(ctx context.Context, e *env, args []string) error {
	var (
		target  = defaultHealthURL
		timeout = 2 * time.Second
	)
	f := newFlags("healthcheck", "hbmesh healthcheck [--url URL] [--timeout 2s]", `
GET --url and exit 0 when it answers 2xx; otherwise print one line saying
why (status, refused connection, timeout) and exit 1. Meant for container
health checks in images without a shell: point it at the /readyz (ready:
connected and judging) or /livez (the process serves) of 'hbmesh monitor
--http'.`, []string{
		`HEALTHCHECK CMD ["/hbmesh", "healthcheck"]`,
		"hbmesh healthcheck --url http://127.0.0.1:8080/livez --timeout 1s",
	})
	f.String(&target, "url", "", target, "`URL` to GET")
	f.Env("url", "HBMESH_HEALTHCHECK_URL")
	f.Var(durationFlag{&timeout, time.Millisecond, time.Hour}, "timeout", "", "give up after this `duration`")
	if err := f.parse(e, args); err != nil {
		return err
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("invalid value %q for flag --url: want an http or https URL", target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usagef("invalid value %q for flag --url: %v", target, err)
	}
	client := &http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and URL
	}
	defer resp.Body.Close()
	// The first line of the body says why, e.g. /readyz's reason.
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadString('\n')
	line = strings.TrimSpace(line)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if line != "" {
			return fmt.Errorf("GET %s: %s: %s", target, resp.Status, line)
		}
		return fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	fmt.Fprintf(e.stdout, "healthy: %s %s\n", resp.Status, line)
	return nil
}
