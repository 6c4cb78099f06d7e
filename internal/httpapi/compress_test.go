package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

func gunzip(t *testing.T, body string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

func acceptEncoding(v string) http.Header { return http.Header{"Accept-Encoding": {v}} }

// TestJSONGzipped: a JSON body big enough is gzipped for a client that
// accepts it, and decodes to exactly the bytes a client without gzip
// gets. (The request sets Accept-Encoding itself, so Go's transport hands
// the body over as sent instead of decoding it.)
func TestJSONGzipped(t *testing.T) {
	_, ts := newServer(t, newFake(200, mixedFleet().peers...))
	for _, path := range []string{"/api/peers", "/api/peers?state=alive&q=p01", "/api/status"} {
		t.Run(path, func(t *testing.T) {
			plainResp, plain := do(t, http.MethodGet, ts.URL+path, acceptEncoding("identity"))
			if ce := plainResp.Header.Get("Content-Encoding"); ce != "" || plainResp.StatusCode != http.StatusOK {
				t.Fatalf("identity: status %d, Content-Encoding %q", plainResp.StatusCode, ce)
			}
			resp, body := do(t, http.MethodGet, ts.URL+path, acceptEncoding("gzip, deflate, br"))
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("status %d, Content-Encoding %q, want 200 gzip", resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			if got := gunzip(t, body); got != plain {
				t.Errorf("gunzipped body differs from the plain one:\n%s\nwant\n%s", got, plain)
			}
			if len(body) >= len(plain) {
				t.Errorf("gzip body %d bytes, plain %d: nothing saved", len(body), len(plain))
			}
			for _, r := range []*http.Response{plainResp, resp} {
				if v := r.Header.Values("Vary"); len(v) != 1 || v[0] != "Accept-Encoding" {
					t.Errorf("Vary %q, want Accept-Encoding", v)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
			}
		})
	}
}

// TestAcceptEncodingNegotiation drives the real handler with the
// Accept-Encoding values browsers, curl and proxies send.
func TestAcceptEncodingNegotiation(t *testing.T) {
	_, ts := newServer(t, newFake(50))
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"", false},
		{"identity", false},
		{"gzip", true},
		{"GZip", true},
		{"x-gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"br;q=1.0, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=nonsense", false},
		{"deflate, br", false},
		{"*", true},
		{"*;q=0", false},
		{"br, *;q=0.1", true},
		{"gzip;q=0, *", false}, // an explicit refusal beats the wildcard
		{"*;q=0, gzip", true},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, ts.URL+"/api/peers", acceptEncoding(tc.accept))
			got := resp.Header.Get("Content-Encoding") == "gzip"
			if got != tc.gzip {
				t.Fatalf("gzipped %v, want %v", got, tc.gzip)
			}
			if got {
				body = gunzip(t, body)
			}
			if ids := peerIDs(t, body); len(ids) != 50 {
				t.Errorf("%d peers, want 50", len(ids))
			}
		})
	}
}

// TestSmallJSONNotGzipped: a body under the threshold, like an error,
// goes plain with its length even to a gzip client; HEAD of a gzipped
// endpoint says gzip and sends nothing.
func TestSmallJSONNotGzipped(t *testing.T) {
	_, ts := newServer(t, newFake(50))
	resp, body := do(t, http.MethodGet, ts.URL+"/api/peers/nope", acceptEncoding("gzip"))
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Encoding") != "" ||
		!strings.Contains(body, `"error"`) || resp.ContentLength != int64(len(body)) {
		t.Errorf("small error: status %d, Content-Encoding %q, length %d, body %q",
			resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.ContentLength, body)
	}
	if resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("Vary %q on a body that a bigger one would have gzipped", resp.Header.Get("Vary"))
	}
	resp, body = do(t, http.MethodHead, ts.URL+"/api/peers", acceptEncoding("gzip"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" || body != "" {
		t.Errorf("HEAD: status %d, Content-Encoding %q, body %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), body)
	}
}

// TestEventStreamNotGzipped: the SSE stream stays uncompressed whatever
// the client accepts, so every event is flushed as it is written.
func TestEventStreamNotGzipped(t *testing.T) {
	_, ts := newServer(t, newFake(200))
	s := openSSE(t, ts.URL+"/api/events", acceptEncoding("gzip"))
	if ce := s.resp.Header.Get("Content-Encoding"); ce != "" {
		t.Fatalf("Content-Encoding %q on the event stream", ce)
	}
	if ev := s.next(t, false); ev.name != "snapshot" || !bytes.Contains([]byte(ev.data), []byte(`"p0199"`)) {
		t.Errorf("first event %q, want a plain snapshot with p0199", ev.name)
	}
}

// TestUIAssetsGzippedAndRevalidated: the dashboard's files come gzipped
// to a browser that accepts it, each representation with its own ETag,
// and a request naming the tag it holds gets a 304 with no body.
func TestUIAssetsGzippedAndRevalidated(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	for _, path := range []string{"/", "/app.js", "/app.css"} {
		plainResp, plain := do(t, http.MethodGet, ts.URL+path, acceptEncoding("identity"))
		gzResp, gz := do(t, http.MethodGet, ts.URL+path, acceptEncoding("gzip"))
		if plainResp.Header.Get("Content-Encoding") != "" || gzResp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: encodings %q and %q", path, plainResp.Header.Get("Content-Encoding"), gzResp.Header.Get("Content-Encoding"))
		}
		if got := gunzip(t, gz); got != plain || len(gz) >= len(plain) {
			t.Errorf("%s: gzip body (%d bytes) does not decode to the plain one (%d bytes)", path, len(gz), len(plain))
		}
		pTag, gTag := plainResp.Header.Get("ETag"), gzResp.Header.Get("ETag")
		if pTag == "" || gTag == "" || pTag == gTag || !strings.Contains(gzResp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: ETags %q and %q, Vary %q", path, pTag, gTag, gzResp.Header.Get("Vary"))
		}
		for _, c := range []struct {
			enc, inm string
			want     int
		}{
			{"gzip", gTag, http.StatusNotModified},
			{"gzip", `"nope", W/` + gTag, http.StatusNotModified},
			{"gzip", "*", http.StatusNotModified},
			{"identity", pTag, http.StatusNotModified},
			{"identity", gTag, http.StatusOK}, // a tag for the other representation
			{"gzip", `"stale"`, http.StatusOK},
		} {
			hdr := acceptEncoding(c.enc)
			hdr.Set("If-None-Match", c.inm)
			resp, body := do(t, http.MethodGet, ts.URL+path, hdr)
			if resp.StatusCode != c.want || (c.want == http.StatusNotModified && body != "") {
				t.Errorf("%s, %s, If-None-Match %s: %d with %d bytes, want %d", path, c.enc, c.inm, resp.StatusCode, len(body), c.want)
			}
		}
	}
}
