package httpapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// gzipMinSize is the smallest JSON body that is compressed. Below it the
// 18 bytes of gzip framing and the deflate block eat most of the saving:
// error bodies stay plain, /api/status (about 460 bytes) is compressed.
const gzipMinSize = 256

// maxPooledBuf is the largest encode buffer kept for reuse. A full
// /api/peers body at 10,000 peers is about 4 MB; a buffer that grew past
// this for a bigger fleet is left to the garbage collector rather than
// held by the pool.
const maxPooledBuf = 8 << 20

// pools reuses what encoding and compressing a JSON body needs. It is
// per [Server] rather than a package variable; the zero value is ready.
type pools struct {
	// gzip holds writers at gzip.BestSpeed: an API body is mostly repeated
	// keys, which the fastest level already shrinks about sixfold; the
	// default level saves another 18% for 2.7 times the CPU
	// (BenchmarkGzipLevel, docs/PERFORMANCE.md). A new writer allocates
	// about 1.2 MB (go1.26), so each one is reused.
	gzip sync.Pool
	bufs sync.Pool // *bytes.Buffer
}

func (p *pools) getBuf() *bytes.Buffer {
	if b, ok := p.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (p *pools) putBuf(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuf {
		return
	}
	b.Reset()
	p.bufs.Put(b)
}

// writeGzip writes body to w as one gzip member with a pooled writer.
func (p *pools) writeGzip(w io.Writer, body []byte) error {
	gz, ok := p.gzip.Get().(*gzip.Writer)
	if ok {
		gz.Reset(w)
	} else {
		gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
	}
	_, err := gz.Write(body)
	if cerr := gz.Close(); err == nil {
		err = cerr
	}
	gz.Reset(io.Discard) // hold no reference to the response in the pool
	p.gzip.Put(gz)
	return err
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (RFC 9110, section 12.5.3): an explicit gzip or x-gzip with a non-zero
// q, or else a "*" with a non-zero q. A request without the header gets
// identity: the RFC would allow any coding then, but a client that sends
// none, such as a bare script, usually cannot decode one.
func acceptsGzip(r *http.Request) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := qValue(params)
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// qValue returns the q parameter in params ("q=0.5"), 1 when there is
// none, and 0 when it does not parse: a coding with a garbled weight is
// not taken as wanted.
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}
