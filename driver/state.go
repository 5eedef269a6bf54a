package driver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// stateVersion is bumped when the file format changes incompatibly.
const stateVersion = 1

const (
	stateFile  = "state.json"
	backupFile = "state.json.bak"
)

// volumeRecord is what survives a plugin restart for one volume. Options
// may hold inline secrets (password=, identity_b64=), which is why the
// file is 0600 in a 0700 directory and never shown anywhere.
type volumeRecord struct {
	Options   map[string]string `json:"options"`
	CreatedAt time.Time         `json:"created_at"`
	// MountIDs are the Docker callers that hold the volume mounted.
	MountIDs []string `json:"mount_ids,omitempty"`
	// Backend, Remote and HostKey are display-only facts learnt at
	// Create, so Get/List can show them without network I/O.
	Backend string `json:"backend,omitempty"`
	Remote  string `json:"remote,omitempty"`
	HostKey string `json:"host_key,omitempty"`
}

type stateDoc struct {
	Version int                        `json:"version"`
	Volumes map[string]json.RawMessage `json:"volumes"`
}

// store persists volume records atomically in dir.
type store struct {
	dir string
	log *slog.Logger
	// lastGood is the content of the last state file known to be valid; it
	// becomes the backup on the next save. Only touched under the
	// driver's saveMu.
	lastGood []byte
}

func newStore(dir string, log *slog.Logger) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory %s: %w (set a writable state directory with -state-dir or SFTPFS_STATE_DIR)", dir, err)
	}
	// The directory may predate us with looser permissions; it holds
	// inline secrets, so tighten it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restricting the state directory %s to 0700: %w", dir, err)
	}
	return &store{dir: dir, log: log}, nil
}

// load reads the state, salvaging what it can from a damaged file. It only
// fails when the directory itself cannot be read; damage is logged and
// worked around so that one bad entry never loses the other volumes.
func (s *store) load() (map[string]*volumeRecord, error) {
	main, mainErr := os.ReadFile(filepath.Join(s.dir, stateFile))
	if mainErr != nil && !errors.Is(mainErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the plugin state: %w", mainErr)
	}
	if mainErr == nil {
		vols, bad, err := decodeState(main)
		if err == nil && len(bad) == 0 {
			s.lastGood = main
			return vols, nil
		}
		// Damaged: keep a copy for forensics, then merge in whatever
		// the backup knows about volumes we could not salvage.
		keep := filepath.Join(s.dir, fmt.Sprintf("state.json.corrupt-%d", time.Now().Unix()))
		if werr := os.WriteFile(keep, main, 0o600); werr != nil {
			s.log.Warn("could not keep a copy of the damaged state file", "error", werr)
		}
		s.log.Error("the plugin state file is damaged; salvaging what it holds and falling back to the backup for the rest",
			"file", filepath.Join(s.dir, stateFile), "copy", keep, "error", err, "unreadable_volumes", bad, "salvaged_volumes", len(vols))
		if vols == nil {
			vols = map[string]*volumeRecord{}
		}
		backup, _, berr := s.loadBackup()
		if berr != nil {
			s.log.Warn("no usable backup of the plugin state", "error", berr)
		}
		for name, r := range backup {
			if _, ok := vols[name]; !ok && (err != nil || slices.Contains(bad, name)) {
				vols[name] = r
				s.log.Warn("restored volume from the state backup", "volume", name)
			}
		}
		return vols, nil
	}
	// No state file: a fresh install, or a crash between writes; the
	// backup is then the best we have.
	vols, raw, err := s.loadBackup()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("no usable backup of the plugin state", "error", err)
		}
		return map[string]*volumeRecord{}, nil
	}
	s.log.Warn("the plugin state file is missing; using the backup", "volumes", len(vols))
	s.lastGood = raw
	return vols, nil
}

func (s *store) loadBackup() (map[string]*volumeRecord, []byte, error) {
	raw, err := os.ReadFile(filepath.Join(s.dir, backupFile))
	if err != nil {
		return nil, nil, err
	}
	vols, bad, err := decodeState(raw)
	if err != nil {
		return vols, nil, err
	}
	if len(bad) > 0 {
		return vols, nil, fmt.Errorf("backup entries unreadable: %v", bad)
	}
	return vols, raw, nil
}

// decodeState parses a state document volume by volume, so a damaged
// entry costs only that entry. bad lists the names whose entries could not
// be read; err is set when the document as a whole is unreadable.
func decodeState(raw []byte) (vols map[string]*volumeRecord, bad []string, err error) {
	var doc stateDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		// A truncated file is the common case: salvage whole entries
		// from the readable prefix.
		return salvage(raw), nil, fmt.Errorf("parsing the state file: %w", err)
	}
	if doc.Version != stateVersion {
		return nil, nil, fmt.Errorf("state file version %d is not supported (this plugin writes version %d)", doc.Version, stateVersion)
	}
	vols = map[string]*volumeRecord{}
	for name, rawRec := range doc.Volumes {
		var r volumeRecord
		if err := json.Unmarshal(rawRec, &r); err != nil || validateName(name) != nil || r.Options == nil {
			bad = append(bad, name)
			continue
		}
		vols[name] = &r
	}
	sort.Strings(bad)
	return vols, bad, nil
}

// salvage extracts complete volume entries from the start of a damaged
// document by streaming tokens until the first error.
func salvage(raw []byte) map[string]*volumeRecord {
	out := map[string]*volumeRecord{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	expect := func(want json.Delim) bool {
		tok, err := dec.Token()
		d, ok := tok.(json.Delim)
		return err == nil && ok && d == want
	}
	if !expect('{') {
		return out
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		key, _ := tok.(string)
		if key != "volumes" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return out
			}
			continue
		}
		if !expect('{') {
			return out
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return out
			}
			name, _ := tok.(string)
			var r volumeRecord
			if err := dec.Decode(&r); err != nil {
				return out
			}
			if validateName(name) == nil && r.Options != nil {
				out[name] = &r
			}
		}
		return out
	}
	return out
}

// save writes vols atomically: the previous good state becomes the
// backup, then the new state replaces the old in one rename.
func (s *store) save(vols map[string]*volumeRecord) error {
	doc := stateDoc{Version: stateVersion, Volumes: map[string]json.RawMessage{}}
	for name, r := range vols {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding the state of volume %q: %w", name, err)
		}
		doc.Volumes[name] = b
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the plugin state: %w", err)
	}
	if s.lastGood != nil {
		if err := writeAtomic(s.dir, backupFile, s.lastGood); err != nil {
			return err
		}
	}
	if err := writeAtomic(s.dir, stateFile, raw); err != nil {
		return err
	}
	s.lastGood = raw
	return nil
}

// writeAtomic replaces dir/name with data so that a crash at any point
// leaves either the old or the new content: write a temporary file, fsync
// it, rename it over the target, fsync the directory.
func writeAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing the plugin state in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("writing the plugin state: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing the plugin state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing the plugin state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the plugin state: %w", err)
	}
	if err := os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("writing the plugin state: %w", err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing the state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing the state directory: %w", err)
	}
	return nil
}
