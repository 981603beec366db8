package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
)

// MaxBlobSize bounds a fetched blob, so a misbehaving server cannot fill the
// disk of a TaskManager.
const MaxBlobSize = 1 << 30

// Cache fetches blobs from a JobManager's blob server into a local store,
// verifying each against its key before it becomes visible.
type Cache struct {
	store  *Store
	client *http.Client
	mu     sync.Mutex
	locks  map[string]*sync.Mutex
}

// NewCache returns a cache in store that fetches with client (whose
// transport carries the blob connection's TLS).
func NewCache(store *Store, client *http.Client) *Cache {
	return &Cache{store: store, client: client, locks: map[string]*sync.Mutex{}}
}

func (c *Cache) lock(k string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.locks[k]
	if !ok {
		l = &sync.Mutex{}
		c.locks[k] = l
	}
	return l
}

// Fetch returns the local path of blob k, downloading it from the blob server
// at addr (host:port) when not cached.
func (c *Cache) Fetch(ctx context.Context, addr, k string) (string, error) {
	if !ValidKey(k) {
		return "", fmt.Errorf("blob key %q: want 64 lowercase hex digits (SHA-256)", k)
	}
	l := c.lock(k)
	l.Lock()
	defer l.Unlock()
	if p, ok := c.store.Path(k); ok {
		return p, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/blobs/"+k, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch blob %s from %s: %w", k, addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("fetch blob %s from %s: %s: %s", k, addr, resp.Status, msg)
	}
	tmp, err := os.CreateTemp(c.store.Dir(), ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, MaxBlobSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("fetch blob %s from %s: %w", k, addr, err)
	}
	if n > MaxBlobSize {
		return "", fmt.Errorf("fetch blob %s from %s: larger than %d bytes", k, addr, MaxBlobSize)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != k {
		return "", fmt.Errorf("blob %s from %s failed verification: content hashes to %s", k, addr, got)
	}
	p := filepath.Join(c.store.Dir(), k)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", err
	}
	return p, nil
}
