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

// healthcheckCmd is `hbmesh healthcheck`: it GETs a URL and exits 0 on
// 2xx. It exists for container images built FROM scratch, where a
// HEALTHCHECK has no shell or curl.
type healthcheckCmd struct {
	URL     string        `default:"${health_url}" placeholder:"URL" env:"HBMESH_HEALTHCHECK_URL" help:"URL to GET"`
	Timeout time.Duration `default:"2s" min:"1ms" max:"1h" placeholder:"DURATION" help:"give up after this long"`
}

func (c *healthcheckCmd) Help() string {
	return `GET --url and exit 0 when it answers 2xx; otherwise print one line saying why (status, refused connection, timeout) and exit 1. Meant for container health checks in images without a shell: point it at the /readyz (ready: connected and judging) or /livez (the process serves) of 'hbmesh monitor --http'.`
}

func (c *healthcheckCmd) examples() []string {
	return []string{
		`HEALTHCHECK CMD ["/hbmesh", "healthcheck"]`,
		"hbmesh healthcheck --url http://127.0.0.1:8080/livez --timeout 1s",
	}
}

func (c *healthcheckCmd) Run(ctx context.Context, e *env) error {
	target, timeout := c.URL, c.Timeout
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%s %s: want an http or https URL", e.source("url"), quoteURL(target))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usagef("%s %s: %v", e.source("url"), quoteURL(target), err)
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
