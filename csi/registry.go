package csi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// registry is the controller's list of created volumes: name to canonical
// options. Only non-secret options ever enter it (volumeOptions refuses
// the others), so it may be written to disk.
type registry struct {
	path string // "" keeps it in memory only

	mu   sync.Mutex
	vols map[string]map[string]string
}

func loadRegistry(dir string) (*registry, error) {
	r := &registry{vols: map[string]map[string]string{}}
	if dir == "" {
		return r, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("csi: creating the state directory: %w", err)
	}
	r.path = filepath.Join(dir, "volumes.json")
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("csi: reading the volume list: %w", err)
	}
	if err := json.Unmarshal(b, &r.vols); err != nil {
		return nil, fmt.Errorf("csi: the volume list %s is damaged (%v); move it away to start with an empty list", r.path, err)
	}
	if r.vols == nil {
		r.vols = map[string]map[string]string{}
	}
	return r, nil
}

func (r *registry) get(name string) (map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.vols[name]
	return maps.Clone(v), ok
}

func (r *registry) put(name string, opts map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vols[name] = maps.Clone(opts)
	return r.saveLocked()
}

func (r *registry) remove(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.vols[name]; !ok {
		return nil
	}
	delete(r.vols, name)
	return r.saveLocked()
}

// saveLocked writes the list atomically: temp file, fsync, rename.
func (r *registry) saveLocked() error {
	if r.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(r.vols, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}
