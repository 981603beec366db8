package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestStoreServeFetch(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("name: job\n")
	k, err := store.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	if k != Key(data) || !ValidKey(k) {
		t.Fatalf("key %q", k)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go NewServer(store, slog.Default(), nil).Serve(ctx, l)

	cacheStore, _ := NewStore(t.TempDir())
	c := NewCache(cacheStore, http.DefaultClient, "tm-1")
	p, err := c.Fetch(ctx, "job/0", l.Addr().String(), k)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != string(data) {
		t.Fatalf("fetched %q", got)
	}
	// Unknown and malformed keys are clear errors.
	if _, err := c.Fetch(ctx, "job/0", l.Addr().String(), strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := c.Fetch(ctx, "job/0", l.Addr().String(), "../etc/passwd"); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("bad key: %v", err)
	}
}

// A server that returns other bytes than the key names is caught.
func TestFetchVerifiesHash(t *testing.T) {
	k := Key([]byte("the real spec"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a substituted spec"))
	}))
	defer srv.Close()
	cacheStore, _ := NewStore(t.TempDir())
	c := NewCache(cacheStore, srv.Client(), "tm-1")
	_, err := c.Fetch(context.Background(), "job/0", strings.TrimPrefix(srv.URL, "http://"), k)
	if err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Fatalf("want a verification error, got %v", err)
	}
	if _, ok := cacheStore.Path(k); ok {
		t.Fatal("an unverified blob entered the cache")
	}
}

// The server asks its authorizer before sending a blob: a refusal is a 403
// whose reason reaches the fetching TaskManager, which sent its id.
func TestServerAuthorizer(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := store.Put([]byte("allowed"))
	denied, _ := store.Put([]byte("denied"))
	var sawRequester []string
	authz := AuthorizerFunc(func(r *http.Request, key string) error {
		sawRequester = append(sawRequester, r.Header.Get(RequesterHeader))
		if key == denied {
			return errors.New("taskmanager tm-2 runs no task of a job that uses this blob")
		}
		return nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go NewServer(store, slog.Default(), authz).Serve(ctx, l)

	cacheStore, _ := NewStore(t.TempDir())
	c := NewCache(cacheStore, http.DefaultClient, "tm-2")
	if _, err := c.Fetch(ctx, "j/0", l.Addr().String(), allowed); err != nil {
		t.Fatalf("allowed blob: %v", err)
	}
	_, err = c.Fetch(ctx, "j/0", l.Addr().String(), denied)
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "runs no task") {
		t.Fatalf("denied blob: want a 403 with the reason, got %v", err)
	}
	if _, ok := cacheStore.Path(denied); ok {
		t.Fatal("a refused blob entered the cache")
	}
	for _, r := range sawRequester {
		if r != "tm-2" {
			t.Fatalf("requester header %q, want tm-2", r)
		}
	}
}

// A cached blob is deleted when the last owner that fetched it releases
// it, and not before.
func TestCacheRelease(t *testing.T) {
	store, _ := NewStore(t.TempDir())
	shared, _ := store.Put([]byte("shared spec"))
	own, _ := store.Put([]byte("job a's file"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go NewServer(store, slog.Default(), nil).Serve(ctx, l)
	cacheStore, _ := NewStore(t.TempDir())
	c := NewCache(cacheStore, http.DefaultClient, "tm-1")
	for _, f := range []struct{ owner, key string }{{"a/0", shared}, {"a/0", own}, {"b/0", shared}} {
		if _, err := c.Fetch(ctx, f.owner, l.Addr().String(), f.key); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Release("a/0"); err != nil {
		t.Fatal(err)
	}
	if _, ok := cacheStore.Path(own); ok {
		t.Error("a's own blob survived a's release")
	}
	if _, ok := cacheStore.Path(shared); !ok {
		t.Error("the blob b still uses was deleted with a")
	}
	if err := c.Release("b/0"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := cacheStore.Keys(); len(keys) != 0 {
		t.Errorf("blobs left after every owner released: %v", keys)
	}
}

func TestStoreKeysDelete(t *testing.T) {
	store, _ := NewStore(t.TempDir())
	k, _ := store.Put([]byte("x"))
	if err := os.WriteFile(store.Dir()+"/.incoming-1", []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := store.Keys()
	if err != nil || len(keys) != 1 || keys[0] != k {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := store.Delete(k); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(k); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	if err := store.Delete("../x"); err == nil {
		t.Fatal("a malformed key was accepted")
	}
}

// A release racing a fetch of the same blob by another owner never leaves
// that owner with a path to a deleted file.
func TestCacheReleaseRacesFetch(t *testing.T) {
	store, _ := NewStore(t.TempDir())
	k, _ := store.Put([]byte("spec shared by two jobs"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go NewServer(store, slog.Default(), nil).Serve(ctx, l)
	cacheStore, _ := NewStore(t.TempDir())
	c := NewCache(cacheStore, http.DefaultClient, "tm-1")
	for i := 0; i < 100; i++ {
		a, b := fmt.Sprintf("a/%d", i), fmt.Sprintf("b/%d", i)
		if _, err := c.Fetch(ctx, a, l.Addr().String(), k); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Release(a) }()
		p, err := c.Fetch(ctx, b, l.Addr().String(), k)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("round %d: the blob b fetched was deleted by a's release: %v", i, err)
		}
		if err := c.Release(b); err != nil {
			t.Fatal(err)
		}
	}
}
