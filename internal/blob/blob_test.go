package blob

import (
	"context"
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
	go NewServer(store, slog.Default()).Serve(ctx, l)

	cacheStore, _ := NewStore(t.TempDir())
	c := NewCache(cacheStore, http.DefaultClient)
	p, err := c.Fetch(ctx, l.Addr().String(), k)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != string(data) {
		t.Fatalf("fetched %q", got)
	}
	// Unknown and malformed keys are clear errors.
	if _, err := c.Fetch(ctx, l.Addr().String(), strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := c.Fetch(ctx, l.Addr().String(), "../etc/passwd"); err == nil || !strings.Contains(err.Error(), "SHA-256") {
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
	c := NewCache(cacheStore, srv.Client())
	_, err := c.Fetch(context.Background(), strings.TrimPrefix(srv.URL, "http://"), k)
	if err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Fatalf("want a verification error, got %v", err)
	}
	if _, ok := cacheStore.Path(k); ok {
		t.Fatal("an unverified blob entered the cache")
	}
}
