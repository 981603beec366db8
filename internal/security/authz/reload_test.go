package authz

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rewrite replaces the file and moves its mtime on, so a change is seen
// even on file systems with coarse timestamps.
func rewrite(t *testing.T, path, content string, step int) {
	t.Helper()
	writePolicy(t, filepath.Dir(path), content)
	mt := time.Now().Add(time.Duration(step) * time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func decide(t *testing.T, a *ACL, user, verb, res string) Decision {
	t.Helper()
	d, _, err := a.Authorize(context.Background(), Attributes{User: user, Verb: verb, Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestACLReload(t *testing.T) {
	var logs syncBuffer
	path := writePolicy(t, t.TempDir(), examplePolicy)
	a, err := NewACL(path, []string{"admin"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if decide(t, a, "alice", "submit", "jobs") != Allow || decide(t, a, "carol", "submit", "jobs") != Deny {
		t.Fatal("unexpected initial decisions")
	}

	// A new policy: carol instead of alice.
	rewrite(t, path, strings.Replace(examplePolicy, "users: [alice, bob]", "users: [carol, bob]", 1), 1)
	a.watch.Poll()
	if decide(t, a, "alice", "submit", "jobs") != Deny || decide(t, a, "carol", "submit", "jobs") != Allow {
		t.Error("the new policy is not in force")
	}
	if n := strings.Count(logs.String(), "authorization policy reloaded"); n != 1 {
		t.Errorf("%d reload messages, want 1:\n%s", n, logs.String())
	}
	// Config super users survive a reload.
	if decide(t, a, "admin", "admin", "admin") != Allow {
		t.Error("config super user lost on reload")
	}

	// A broken policy keeps the previous one and is logged once.
	rewrite(t, path, "roles:\n  r:\n    - verbs: [sumbit]\n      resources: [jobs]\n", 2)
	for range 3 {
		a.watch.Poll()
	}
	if decide(t, a, "carol", "submit", "jobs") != Allow {
		t.Error("a broken file replaced the policy")
	}
	if n := strings.Count(logs.String(), "keeping the previous policy"); n != 1 {
		t.Errorf("%d failure messages, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "sumbit") || !strings.Contains(logs.String(), path+":3") {
		t.Errorf("the failure message does not say why:\n%s", logs.String())
	}

	// An empty file (caught half-written) keeps the policy too.
	rewrite(t, path, "", 3)
	a.watch.Poll()
	if decide(t, a, "carol", "submit", "jobs") != Allow {
		t.Error("an empty file replaced the policy")
	}

	// A removed file keeps the policy.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	a.watch.Poll()
	a.watch.Poll()
	if decide(t, a, "carol", "submit", "jobs") != Allow {
		t.Error("a removed file replaced the policy")
	}

	// Fixed again: reloaded.
	rewrite(t, path, examplePolicy, 4)
	a.watch.Poll()
	if decide(t, a, "alice", "submit", "jobs") != Allow || decide(t, a, "carol", "submit", "jobs") != Deny {
		t.Error("the fixed policy is not in force")
	}

	// Touching the file without changing it does not reload.
	mt := time.Now().Add(5 * time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
	a.watch.Poll()
	if n := strings.Count(logs.String(), "authorization policy reloaded"); n != 2 {
		t.Errorf("%d reload messages, want 2:\n%s", n, logs.String())
	}
}

func TestACLRun(t *testing.T) {
	path := writePolicy(t, t.TempDir(), examplePolicy)
	a, err := NewACL(path, nil, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	a.watch.Interval = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()

	// Decisions run concurrently with reloads (meaningful under -race).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				a.Authorize(ctx, Attributes{User: "alice", Verb: "submit", Resource: "jobs"})
			}
		}
	}()

	rewrite(t, path, strings.Replace(examplePolicy, "users: [alice, bob]", "users: [carol]", 1), 1)
	deadline := time.Now().Add(5 * time.Second)
	for decide(t, a, "carol", "submit", "jobs") != Allow {
		if time.Now().After(deadline) {
			t.Fatal("the changed file was not reloaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
}
