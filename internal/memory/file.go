package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
)

// fileFormat is the version of the file layout: 2 since records are
// monitor.PeerJSON. Files of format 1, whose records carry interval_ns,
// are read too.
const fileFormat = 2

type fileDoc struct {
	Format int       `json:"format"`
	Saved  time.Time `json:"saved"`
	Peers  []record  `json:"peers"`
}

// FileStore keeps peers in one JSON file. Create it with [NewFileStore].
type FileStore struct {
	path string
	mu   sync.Mutex // serialises saves, so temp files never race
}

// NewFileStore returns a store writing path. It does no I/O; the directory
// must exist by the first Save.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, cfgerr.Of("file store").Field("path", nil, "is empty")
	}
	return &FileStore{path: filepath.Clean(path)}, nil
}

// Path returns the file's path.
func (s *FileStore) Path() string { return s.path }

// Load reads the file. A missing file yields no peers and no error; a
// file that cannot be parsed yields an error naming the path, and the
// caller should log it and start empty.
func (s *FileStore) Load(ctx context.Context) ([]monitor.PeerInfo, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("memory: read %s: %w", s.path, err)
	}
	var doc fileDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("memory: corrupt %s: %w", s.path, err)
	}
	if doc.Format != 1 && doc.Format != fileFormat {
		return nil, fmt.Errorf("memory: %s: unsupported format %d (want 1 or %d)", s.path, doc.Format, fileFormat)
	}
	out := make([]monitor.PeerInfo, len(doc.Peers))
	for i := range doc.Peers {
		out[i] = doc.Peers[i].peerInfo()
	}
	return out, nil
}

// Save writes peers atomically: to a temp file in the same directory,
// fsynced, renamed over the file, and the directory fsynced, so a crash
// leaves either the old file or the new one, never a torn one.
func (s *FileStore) Save(ctx context.Context, peers []monitor.PeerInfo) error {
	doc := fileDoc{Format: fileFormat, Saved: time.Now().UTC(), Peers: make([]record, len(peers))}
	for i := range peers {
		doc.Peers[i] = toRecord(&peers[i], doc.Saved)
	}
	data, err := json.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("memory: encode: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("memory: save %s: %w", s.path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("memory: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("memory: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("memory: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("memory: rename to %s: %w", s.path, err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("memory: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("memory: fsync dir %s: %w", dir, err)
	}
	return nil
}

// Close does nothing; it is there to satisfy [Store].
func (s *FileStore) Close() {}
