package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// jobFiles keeps the submitted jobs under
// <high-availability.storageDir>/<cluster-id>/jobs, one private file per
// job; the ConfigMap holds its path and SHA-256, so a file changed behind
// the JobManager's back is refused at recovery.
type jobFiles struct{ dir string }

type filePointer struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

func newJobFiles(storageDir, clusterID string) (*jobFiles, error) {
	if storageDir == "" {
		return nil, errors.New("high-availability.storageDir is not set: set it to a directory every JobManager replica mounts")
	}
	dir := filepath.Join(storageDir, clusterID, "jobs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("high-availability.storageDir: create %s: %w", dir, err)
	}
	return &jobFiles{dir: dir}, nil
}

func (f *jobFiles) path(id string) string { return filepath.Join(f.dir, "job-"+id) }

// write stores data atomically (0600) and returns the ConfigMap value
// pointing at it.
func (f *jobFiles) write(id string, data []byte) (string, error) {
	p := f.path(id)
	tmp, err := os.CreateTemp(f.dir, ".job-"+id+".tmp*")
	if err != nil {
		return "", fmt.Errorf("high-availability.storageDir: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("high-availability.storageDir: write %s: %w", p, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("high-availability.storageDir: write %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("high-availability.storageDir: write %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("high-availability.storageDir: %w", err)
	}
	sum := sha256.Sum256(data)
	b, _ := json.Marshal(filePointer{Path: p, SHA256: hex.EncodeToString(sum[:])})
	return string(b), nil
}

// read loads a job's file through its pointer and checks its hash.
func (f *jobFiles) read(id, pointer string) ([]byte, error) {
	var ptr filePointer
	if err := json.Unmarshal([]byte(pointer), &ptr); err != nil {
		return nil, fmt.Errorf("job %s: bad pointer in the cluster ConfigMap: %w", id, err)
	}
	data, err := os.ReadFile(ptr.Path)
	if err != nil {
		return nil, fmt.Errorf("job %s: read its stored submission (high-availability.storageDir must be the same shared directory on every JobManager replica): %w", id, err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != ptr.SHA256 {
		return nil, fmt.Errorf("job %s: the stored submission %s does not match the SHA-256 recorded when it was written: it was changed outside sluice; refusing to run it", id, ptr.Path)
	}
	return data, nil
}

func (f *jobFiles) remove(id string) error {
	if err := os.Remove(f.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("high-availability.storageDir: %w", err)
	}
	return nil
}
