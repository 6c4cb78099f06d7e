package memory

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultProbeTimeout bounds Open's check for JetStream.
const DefaultProbeTimeout = 2 * time.Second

// Options selects and configures the store [Open] returns.
type Options struct {
	// Path, when set, selects a [FileStore] at that path.
	Path string
	// KV configures the [KVStore] used when Path is empty and the server
	// offers JetStream. KV.MonitorID is required for it.
	KV KVConfig
	// ProbeTimeout bounds the JetStream check. Default 2s.
	ProbeTimeout time.Duration
	// Logger receives Open's decision. Default: discard.
	Logger *slog.Logger
}

// Open returns the restart memory to use:
//
//  1. opts.Path set: a FileStore at that path (no I/O);
//  2. else, if the server answers a JetStream account-info request within
//     ProbeTimeout: a KVStore, its bucket created if missing;
//  3. else: nil and no error. The caller runs without restart memory, as
//     a monitor always did; the reason is logged at Info (no JetStream)
//     or Warn (the probe failed otherwise).
//
// A failure to open the KV bucket once JetStream is known to be there is
// an error. nc may be nil when opts.Path is set.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Path != "" {
		fs, err := NewFileStore(opts.Path)
		if err != nil {
			return nil, err
		}
		log.Info("restart memory: file", "path", fs.Path())
		return fs, nil
	}
	if nc == nil {
		log.Info("restart memory: off (no file and no NATS connection)")
		return nil, nil
	}
	timeout := opts.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Warn("restart memory: off", "err", err)
		return nil, nil
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	_, err = js.AccountInfo(pctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		log.Info("restart memory: off (the server has no JetStream; --state-file FILE keeps it in a file)")
		return nil, nil
	case err != nil:
		log.Warn("restart memory: off (JetStream check failed)", "err", err)
		return nil, nil
	}
	kvCfg := opts.KV
	if kvCfg.Logger == nil {
		kvCfg.Logger = log
	}
	kv, err := OpenKV(ctx, nc, kvCfg)
	if err != nil {
		return nil, err
	}
	log.Info("restart memory: JetStream KV", "bucket", kv.Bucket(), "monitor", kvCfg.MonitorID)
	return kv, nil
}
