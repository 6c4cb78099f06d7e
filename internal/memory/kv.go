package memory

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// DefaultTTL is how long a KV entry lives without being re-put.
const DefaultTTL = 24 * time.Hour

// KVConfig configures a [KVStore].
type KVConfig struct {
	// MonitorID is the owner of the entries: every key starts with it, so
	// a monitor restarted with the same id finds its own peers and
	// monitors sharing a bucket never see each other's. Required.
	MonitorID string
	// Prefix is the subject prefix, used to name the default bucket.
	// Default wire.DefaultPrefix ("hb").
	Prefix string
	// Bucket is the KV bucket. Default [BucketName](Prefix), e.g.
	// hbmesh_hb_peers. Created if missing (History 1, TTL, file storage);
	// an existing bucket is used as it is.
	Bucket string
	// TTL is the bucket's max age when the store creates it. Entries that
	// did not change are re-put after TTL/2 so they never expire while the
	// monitor runs; the entries of a monitor gone for longer than TTL
	// vanish. Default 24h.
	TTL time.Duration
	// Replicas is the bucket's replica count when the store creates it.
	// Default 1.
	Replicas int
	// Logger receives the store's logs. Default: discard.
	Logger *slog.Logger
}

func (c *KVConfig) fillDefaults() {
	c.Prefix = cmp.Or(c.Prefix, wire.DefaultPrefix)
	c.Bucket = cmp.Or(c.Bucket, BucketName(c.Prefix)) // after Prefix
	c.TTL = cmp.Or(c.TTL, DefaultTTL)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Validate reports the first bad field by name and value.
func (c *KVConfig) Validate() error {
	const invalid cfgerr.Of = "KV store"
	if err := wire.ValidateID(c.MonitorID); err != nil {
		return invalid.Wrap("MonitorID", nil, err)
	}
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	for i := 0; i < len(c.Bucket); i++ {
		if !tokenByte(c.Bucket[i]) {
			return invalid.Field("Bucket", c.Bucket, "may only use [A-Za-z0-9_-]")
		}
	}
	switch {
	case c.Bucket == "":
		return invalid.Field("Bucket", nil, "is empty")
	case c.TTL < time.Second:
		return invalid.Field("TTL", c.TTL, "must be at least 1s")
	case c.Replicas < 1 || c.Replicas > 5:
		return invalid.Field("Replicas", c.Replicas, "must be within [1, 5]")
	}
	return nil
}

// BucketName returns the default bucket of prefix: hbmesh_<prefix>_peers,
// with every byte outside [A-Za-z0-9_-] replaced by '_'.
func BucketName(prefix string) string {
	b := []byte("hbmesh_" + prefix + "_peers")
	for i := range b {
		if !tokenByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// keyToken makes an id usable as one token of a KV key. Ids made of
// [A-Za-z0-9_-] are used as they are; any other id (ids may hold any
// UTF-8 but '.', wildcards and spaces) becomes '=' followed by its
// unpadded base64url encoding, which cannot collide with a plain id.
func keyToken(id string) string {
	for i := 0; i < len(id); i++ {
		if !tokenByte(id[i]) {
			return "=" + base64.RawURLEncoding.EncodeToString([]byte(id))
		}
	}
	return id
}

// fingerprint is what, when changed, makes Save re-put a peer.
type fingerprint struct {
	state    monitor.State
	boot     string
	interval time.Duration
	host     string
}

type cached struct {
	fp    fingerprint
	putAt time.Time
}

// KVStore keeps peers in a JetStream KV bucket, one entry per peer under
// the key <monitor>.<peer>. Open it with [OpenKV].
type KVStore struct {
	kv    jetstream.KeyValue
	cfg   KVConfig
	owner string // keyToken(MonitorID) + "."

	mu     sync.Mutex // guards cache and seeded; serialises Load and Save
	cache  map[string]cached
	seeded bool
	now    func() time.Time
}

// OpenKV binds to the bucket, creating it if it is missing.
func OpenKV(ctx context.Context, nc *nats.Conn, cfg KVConfig) (*KVStore, error) {
	if nc == nil {
		return nil, cfgerr.Of("KV store").Field("nc", nil, "is a nil *nats.Conn")
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("memory: jetstream: %w", err)
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      cfg.Bucket,
			Description: "hbmesh monitor restart memory",
			History:     1,
			TTL:         cfg.TTL,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket) // created concurrently
		} else if err == nil {
			cfg.Logger.Info("restart memory bucket created", "bucket", cfg.Bucket, "ttl", cfg.TTL, "replicas", cfg.Replicas)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("memory: bucket %q: %w", cfg.Bucket, err)
	}
	return &KVStore{
		kv: kv, cfg: cfg, owner: keyToken(cfg.MonitorID) + ".",
		cache: make(map[string]cached), now: time.Now,
	}, nil
}

// Bucket returns the bucket's name.
func (s *KVStore) Bucket() string { return s.cfg.Bucket }

// Key returns the key peer id is stored under.
func (s *KVStore) Key(peerID string) string { return s.owner + keyToken(peerID) }

// Load returns the peers under this monitor's keys. Entries that do not
// decode are skipped and logged.
func (s *KVStore) Load(ctx context.Context) ([]monitor.PeerInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []monitor.PeerInfo
	err := s.scan(ctx, false, func(e jetstream.KeyValueEntry) {
		var r record
		if err := json.Unmarshal(e.Value(), &r); err != nil || s.Key(r.ID) != e.Key() {
			s.cfg.Logger.Warn("restart memory: bad entry skipped", "bucket", s.cfg.Bucket, "key", e.Key(), "err", err)
			return
		}
		p := r.peerInfo()
		out = append(out, p)
		s.cache[e.Key()] = cached{fp: fingerprintOf(&p), putAt: e.Created()}
	})
	if err != nil {
		return nil, err
	}
	s.seeded = true
	return out, nil
}

// scan calls fn for each live entry under this monitor's keys.
func (s *KVStore) scan(ctx context.Context, metaOnly bool, fn func(jetstream.KeyValueEntry)) error {
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if metaOnly {
		opts = append(opts, jetstream.MetaOnly())
	}
	w, err := s.kv.Watch(ctx, s.owner+">", opts...)
	if err != nil {
		return fmt.Errorf("memory: watch %s in %q: %w", s.owner+">", s.cfg.Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // every current entry has been delivered
				return nil
			}
			fn(e)
		case <-ctx.Done():
			return fmt.Errorf("memory: load from %q: %w", s.cfg.Bucket, ctx.Err())
		}
	}
}

func fingerprintOf(p *monitor.PeerInfo) fingerprint {
	return fingerprint{state: p.State, boot: p.Boot, interval: p.Interval, host: p.Host}
}

// Save puts the peers whose state, boot, interval or host changed since
// the last save, re-puts unchanged ones last put more than TTL/2 ago, and
// deletes the keys of peers no longer in peers. Every write is attempted;
// the first error is returned and failed writes are retried by the next
// Save.
func (s *KVStore) Save(ctx context.Context, peers []monitor.PeerInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seeded {
		// Learn which keys exist, so peers forgotten while this process
		// was not watching are deleted too.
		err := s.scan(ctx, true, func(e jetstream.KeyValueEntry) {
			s.cache[e.Key()] = cached{putAt: e.Created()}
		})
		if err != nil {
			return err
		}
		s.seeded = true
	}
	now := s.now()
	var first error
	keep := make(map[string]struct{}, len(peers))
	for i := range peers {
		p := &peers[i]
		key := s.Key(p.ID)
		keep[key] = struct{}{}
		fp := fingerprintOf(p)
		if c, ok := s.cache[key]; ok && c.fp == fp && now.Sub(c.putAt) < s.cfg.TTL/2 {
			continue
		}
		data, err := json.Marshal(toRecord(p, now))
		if err == nil {
			_, err = s.kv.Put(ctx, key, data)
		}
		if err != nil {
			first = firstErr(first, fmt.Errorf("memory: put %q: %w", key, err))
			delete(s.cache, key)
			continue
		}
		s.cache[key] = cached{fp: fp, putAt: now}
	}
	for key := range s.cache {
		if _, ok := keep[key]; ok {
			continue
		}
		if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			first = firstErr(first, fmt.Errorf("memory: delete %q: %w", key, err))
			continue
		}
		delete(s.cache, key)
	}
	return first
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Close does nothing: the connection belongs to the caller.
func (s *KVStore) Close() {}

var _ Store = (*KVStore)(nil)
var _ Store = (*FileStore)(nil)
