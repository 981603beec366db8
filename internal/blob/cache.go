package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
// verifying each against its key before it becomes visible. It counts which
// owners (job attempts running here) use each blob, and deletes a blob
// when its last owner releases it: a TaskManager keeps a job's artifacts
// no longer than the job's tasks run on it.
type Cache struct {
	store     *Store
	client    *http.Client
	requester string
	mu        sync.Mutex
	locks     map[string]*sync.Mutex
	owners    map[string]map[string]bool // blob key -> owners
}

// NewCache returns a cache in store that fetches with client (whose
// transport carries the blob connection's TLS). requester is the resource
// id of the TaskManager, sent with every fetch (RequesterHeader).
func NewCache(store *Store, client *http.Client, requester string) *Cache {
	return &Cache{store: store, client: client, requester: requester, locks: map[string]*sync.Mutex{}, owners: map[string]map[string]bool{}}
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

// Fetch returns the local path of blob k for owner, downloading it from
// the blob server at addr (host:port) when not cached. The blob stays
// cached until every owner that fetched it called Release.
func (c *Cache) Fetch(ctx context.Context, owner, addr, k string) (string, error) {
	if !ValidKey(k) {
		return "", fmt.Errorf("blob key %q: want 64 lowercase hex digits (SHA-256)", k)
	}
	l := c.lock(k)
	l.Lock()
	defer l.Unlock()
	// The owner is recorded under the key's lock, so a concurrent Release
	// of another owner cannot delete the file between here and the caller
	// opening it.
	c.mu.Lock()
	if c.owners[k] == nil {
		c.owners[k] = map[string]bool{}
	}
	c.owners[k][owner] = true
	c.mu.Unlock()
	if p, ok := c.store.Path(k); ok {
		return p, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/blobs/"+k, nil)
	if err != nil {
		return "", err
	}
	if c.requester != "" {
		req.Header.Set(RequesterHeader, c.requester)
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

// Release drops owner's claim on every blob it fetched and deletes the
// blobs no other owner uses.
func (c *Cache) Release(owner string) error {
	c.mu.Lock()
	var orphans []string
	for k, users := range c.owners {
		if users[owner] {
			delete(users, owner)
			if len(users) == 0 {
				orphans = append(orphans, k)
			}
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, k := range orphans {
		l := c.lock(k)
		l.Lock()
		// Another owner may have fetched k since: check again under the
		// key's lock, which Fetch holds while it records its owner.
		c.mu.Lock()
		unused := len(c.owners[k]) == 0
		if unused {
			// The key's lock stays in c.locks: a Fetch may be waiting on
			// it, and a new lock for the same key would let that Fetch and
			// a later Release run at once.
			delete(c.owners, k)
		}
		c.mu.Unlock()
		if unused {
			errs = append(errs, c.store.Delete(k))
		}
		l.Unlock()
	}
	return errors.Join(errs...)
}
