package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// ui holds the dashboard: one HTML page, its script and its stylesheet,
// all self-contained (no CDN, no build step).
//
//go:embed ui/index.html ui/app.js ui/app.css
var ui embed.FS

// handleUI serves one embedded dashboard file. Each is gzipped once, up
// front, and tagged with a hash of its content: the browser revalidates
// on every load (no-cache) and gets a 304 until the binary changes.
func (s *Server) handleUI(name, contentType string) http.HandlerFunc {
	body, err := ui.ReadFile("ui/" + name)
	if err != nil {
		panic("httpapi: embedded " + name + " missing: " + err.Error()) // a build defect
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // a valid level: no error
	_, _ = zw.Write(body)                                   // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:8])
	plainTag, gzTag := `"`+tag+`"`, `"`+tag+`-gz"` // one strong tag per representation
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Add("Vary", "Accept-Encoding")
		b, etag := body, plainTag
		if acceptsGzip(r) {
			b, etag = gz.Bytes(), gzTag
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("ETag", etag)
		if noneMatch := r.Header.Get("If-None-Match"); noneMatch != "" && etagListHas(noneMatch, etag) {
			h.Del("Content-Encoding")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	}
}

// etagListHas reports whether an If-None-Match value names etag, or is
// "*". Weak tags (W/"…") match their strong form, as RFC 9110's weak
// comparison for If-None-Match requires.
func etagListHas(list, etag string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
