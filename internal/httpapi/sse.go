package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// sseWriteTimeout bounds one write to an SSE client. A client that does
// not take an event within it is cut off; it reconnects and resumes.
const sseWriteTimeout = 10 * time.Second

// sseHeartbeat is how often an idle SSE stream carries a comment line, so
// proxies and the browser see the connection is alive.
const sseHeartbeat = 15 * time.Second

// entry is one published transition, already encoded.
type entry struct {
	seq  uint64
	data []byte // the event JSON
}

// sseClient is one connected stream. Publish sends to ch without blocking;
// when ch is full the client is removed and gone is closed.
type sseClient struct {
	ch   chan entry
	gone chan struct{}
}

// hub fans transitions out to SSE clients and remembers the last few.
//
// mu guards everything below; it is held only for in-memory work, never
// across a write to a client, so Publish cannot be held up by the network.
type hub struct {
	mu      sync.Mutex
	ring    []entry // circular, len == cap once full
	next    int     // ring index of the next write once full
	seq     uint64  // seq of the last published entry
	clients map[*sseClient]struct{}
	closed  bool
	dropped uint64 // clients disconnected for falling behind
}

// newHub starts the sequence at base, so ids from an earlier process (a
// smaller base) are recognised as too old rather than replayed wrongly.
func newHub(size int, base uint64) *hub {
	return &hub{ring: make([]entry, 0, size), seq: base, clients: make(map[*sseClient]struct{})}
}

func (h *hub) publish(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e := entry{seq: h.seq, data: data}
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, e)
	} else {
		h.ring[h.next] = e
		h.next = (h.next + 1) % len(h.ring)
	}
	for c := range h.clients {
		select {
		case c.ch <- e:
		default:
			// Too slow: drop it rather than wait. It reconnects with
			// Last-Event-ID and resumes from the ring if it can.
			delete(h.clients, c)
			close(c.gone)
			h.dropped++
		}
	}
}

// sinceLocked returns the entries after seq in order, and whether seq is
// still covered by the ring (so that those are exactly the missed ones).
func (h *hub) sinceLocked(seq uint64) ([]entry, bool) {
	if seq > h.seq {
		return nil, false // from the future: another process
	}
	if len(h.ring) == 0 {
		return nil, seq == h.seq
	}
	// While the ring fills, next stays 0, so ring[next] is the oldest.
	if seq+1 < h.ring[h.next].seq {
		return nil, false
	}
	out := make([]entry, 0, h.seq-seq)
	for i := range len(h.ring) {
		if e := h.ring[(h.next+i)%len(h.ring)]; e.seq > seq {
			out = append(out, e)
		}
	}
	return out, true
}

// subscribe registers a client. With resume it returns the entries after
// lastID and ok when they are exactly the missed ones; otherwise the
// caller must send a snapshot, taken after subscribe so nothing is lost.
// cur is the seq the snapshot corresponds to at the earliest.
func (h *hub) subscribe(queue, max int, lastID uint64, resume bool) (c *sseClient, replay []entry, ok bool, cur uint64, full bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.clients) >= max {
		return nil, nil, false, 0, true
	}
	if resume {
		replay, ok = h.sinceLocked(lastID)
	}
	c = &sseClient{ch: make(chan entry, queue), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, replay, ok, h.seq, false
}

func (h *hub) unsubscribe(c *sseClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.gone)
	}
}

// close disconnects every client and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		close(c.gone)
	}
}

// Publish hands one transition to every SSE client and to the resume
// buffer. It never blocks on a client: each has a bounded queue
// (Config.EventBuffer) and one that is full is disconnected. It is meant
// to be called from monitor.Config.OnEvent, and is safe for concurrent
// use.
func (s *Server) Publish(ev monitor.Event) {
	s.hub.publish(ev.AppendJSON(make([]byte, 0, 256), s.id))
}

func parseLastEventID(r *http.Request) (uint64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// sseWriter writes SSE frames, pushing the write deadline forward before
// each so the server's WriteTimeout does not end a healthy stream.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
	err error
}

func (sw *sseWriter) event(name string, id uint64, data []byte) {
	if name != "" {
		sw.buf.WriteString("event: ")
		sw.buf.WriteString(name)
		sw.buf.WriteByte('\n')
	}
	if id != 0 {
		sw.buf.WriteString("id: ")
		sw.buf.Write(strconv.AppendUint(nil, id, 10))
		sw.buf.WriteByte('\n')
	}
	// The JSON we send has no raw newlines, so one data line suffices.
	sw.buf.WriteString("data: ")
	sw.buf.Write(data)
	sw.buf.WriteString("\n\n")
}

func (sw *sseWriter) raw(s string) { sw.buf.WriteString(s) }

func (sw *sseWriter) flush() error {
	if sw.err != nil || sw.buf.Len() == 0 {
		return sw.err
	}
	// Not every ResponseWriter supports deadlines (httptest recorders do
	// not); that is fine, there is then no server deadline to fight.
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := sw.w.Write(sw.buf.Bytes()); err != nil {
		sw.err = err
		return err
	}
	sw.buf.Reset()
	sw.err = sw.rc.Flush()
	return sw.err
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	// A page that shows only the first rows of a big fleet asks for a
	// snapshot no bigger than that: the stream is not compressed.
	limit, err := parseLimit(r.URL.Query()["limit"])
	if err != nil {
		s.writeJSON(w, r, http.StatusBadRequest, errorJSON{err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // keep nginx from buffering the stream
	if r.Method == http.MethodHead {
		return
	}
	lastID, resume := parseLastEventID(r)
	c, replay, ok, cur, full := s.hub.subscribe(s.cfg.EventBuffer, s.cfg.MaxSSEClients, lastID, resume)
	if full {
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Retry-After", "5")
		s.writeJSON(w, r, http.StatusServiceUnavailable, errorJSON{"too many event streams; try again later"})
		return
	}
	defer s.hub.unsubscribe(c)

	rc := http.NewResponseController(w)
	// The server's ReadTimeout would otherwise end the stream: the
	// connection's background read fails at that deadline and cancels the
	// request. An SSE client sends nothing after its request anyway.
	_ = rc.SetReadDeadline(time.Time{})
	sw := &sseWriter{w: w, rc: rc}
	w.WriteHeader(http.StatusOK)
	sw.raw("retry: 2000\n\n")
	if ok {
		for _, e := range replay {
			sw.event("transition", e.seq, e.data)
		}
	} else {
		// Taken after subscribing, so any transition it misses is queued
		// in c.ch; applying a queued transition again is harmless.
		body, err := json.Marshal(s.peerList(&peerFilter{limit: limit}))
		if err != nil {
			s.cfg.Logger.Error("snapshot not encoded", "err", err)
			return
		}
		sw.event("snapshot", cur, body)
	}
	if s.writeStatus(sw) != nil {
		return
	}

	status := time.NewTicker(s.cfg.StatusInterval)
	defer status.Stop()
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return // dropped for falling behind, or the server is closing
		case e := <-c.ch:
			sw.event("transition", e.seq, e.data)
			// Batch what is already queued into one write.
			for n := len(c.ch); n > 0; n-- {
				e := <-c.ch
				sw.event("transition", e.seq, e.data)
			}
			if sw.flush() != nil {
				return
			}
		case <-status.C:
			if s.writeStatus(sw) != nil {
				return
			}
		case <-beat.C:
			sw.raw(": keepalive\n\n")
			if sw.flush() != nil {
				return
			}
		}
	}
}

func (s *Server) writeStatus(sw *sseWriter) error {
	body, err := json.Marshal(s.status())
	if err != nil {
		return err
	}
	sw.event("status", 0, body)
	return sw.flush()
}
