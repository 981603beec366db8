package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestEventJSONFieldNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(Options{Path: path, Level: LevelAll})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	l.Log(Event{
		Time: at, RequestID: "r1", User: "alice", Groups: []string{"dev"}, Method: "token",
		Verb: "submit", Resource: "job/abc", Data: []DataAccess{{Verb: "read", Resource: "file:/srv/in/x"}},
		Decision: "deny", Authorizer: "webhook", Reason: "nope", Listener: "public", RemoteAddr: "10.0.0.1:5555",
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	want := map[string]any{
		"time": "2025-01-02T03:04:05Z", "request-id": "r1", "user": "alice", "groups": []any{"dev"},
		"authentication-method": "token", "verb": "submit", "resource": "job/abc",
		"data":     []any{map[string]any{"verb": "read", "resource": "file:/srv/in/x"}},
		"decision": "deny", "authorizer": "webhook", "reason": "nope", "listener": "public",
		"remote-address": "10.0.0.1:5555",
	}
	if got, w := fmt.Sprint(lines[0]), fmt.Sprint(want); got != w {
		t.Errorf("event =\n%s\nwant\n%s", got, w)
	}
}

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		level string
		want  []string // decisions written, in order
	}{
		{"", []string{"deny", "no-opinion"}},
		{LevelDenied, []string{"deny", "no-opinion"}},
		{LevelAll, []string{"allow", "deny", "no-opinion"}},
		{LevelNone, nil},
	} {
		t.Run("level="+tc.level, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l, err := New(Options{Path: path, Level: tc.level})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"allow", "deny", "no-opinion"} {
				l.Log(Event{User: "u", Decision: d})
			}
			l.Close()
			if tc.level == LevelNone {
				// Level none must not even create the file.
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Fatalf("level none created %s (err %v)", path, err)
				}
				return
			}
			var got []string
			for _, m := range readLines(t, path) {
				got = append(got, m["decision"].(string))
				if m["time"] == nil || m["time"] == "0001-01-01T00:00:00Z" {
					t.Errorf("zero time not filled in: %v", m)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("decisions written = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBadLevel(t *testing.T) {
	_, err := New(Options{Path: filepath.Join(t.TempDir(), "a"), Level: "verbose"})
	if err == nil || !strings.Contains(err.Error(), "security.audit.log.level") {
		t.Fatalf("err = %v, want one naming security.audit.log.level", err)
	}
}

func TestNilLoggerLogsNothing(t *testing.T) {
	var l *Logger
	l.Log(Event{Decision: "deny"}) // must not panic
	if l.Enabled("deny") {
		t.Error("nil logger enabled")
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
}

func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Event{Decision: "deny"})
	l.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new audit log mode = %04o, want 0600", st.Mode().Perm())
	}

	// An existing private file is appended to, not truncated.
	l, err = New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Event{Decision: "deny"})
	l.Close()
	if n := len(readLines(t, path)); n != 2 {
		t.Errorf("after reopen: %d lines, want 2 (append, not truncate)", n)
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		p := filepath.Join(dir, fmt.Sprintf("open-%04o.log", mode))
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := New(Options{Path: p})
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v, want a refusal with a chmod hint", mode, err)
		}
	}

	if _, err := New(Options{Path: dir}); err == nil {
		t.Error("a directory was accepted as the audit log")
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "security.audit.log.path") {
		t.Errorf("no path: err = %v", err)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	// Each event is well over 100 bytes, so every event past the first
	// in a file rotates with MaxSize 200: 10 events leave 10 files' worth,
	// of which the current file and 3 backups are kept.
	l, err := New(Options{Path: path, Level: LevelAll, MaxSize: 200, MaxBackups: 3})
	if err != nil {
		t.Fatal(err)
	}
	reason := strings.Repeat("x", 120)
	for i := range 10 {
		l.Log(Event{User: fmt.Sprintf("user%d", i), Decision: "deny", Reason: reason})
	}
	l.Close()

	// Newest in path, then path.1 (previous), ..., path.3 (oldest kept).
	for i, name := range []string{"audit.log", "audit.log.1", "audit.log.2", "audit.log.3"} {
		p := filepath.Join(dir, name)
		lines := readLines(t, p)
		if len(lines) != 1 {
			t.Fatalf("%s: %d lines, want 1", name, len(lines))
		}
		if want := fmt.Sprintf("user%d", 9-i); lines[0]["user"] != want {
			t.Errorf("%s holds %v, want %s", name, lines[0]["user"], want)
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", name, st.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".4"); !os.IsNotExist(err) {
		t.Errorf("backup beyond MaxBackups exists (err %v)", err)
	}
}

func TestRotationKeepsFilesUnderMaxSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := New(Options{Path: path, Level: LevelAll, MaxSize: 1000, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		l.Log(Event{User: fmt.Sprintf("u%d", i), Decision: "allow"})
	}
	l.Close()
	total := 0
	for _, name := range []string{"audit.log", "audit.log.1", "audit.log.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s is %d bytes, over MaxSize 1000", name, st.Size())
		}
		total += len(readLines(t, filepath.Join(dir, name)))
	}
	if total == 0 || total >= 50 {
		t.Errorf("kept %d events; want some, and old ones dropped", total)
	}
}

func TestConcurrentLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	// Large enough that nothing is dropped by rotation, small enough to
	// rotate several times while goroutines race.
	l, err := New(Options{Path: path, Level: LevelAll, MaxSize: 8 << 10, MaxBackups: 100})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.Log(Event{User: fmt.Sprintf("w%d", w), RequestID: fmt.Sprint(i), Decision: "deny"})
			}
		})
	}
	wg.Wait()
	l.Close()
	l.Log(Event{Decision: "deny"}) // after Close: dropped, no panic

	seen := map[string]bool{}
	files, _ := filepath.Glob(path + "*")
	if len(files) < 2 {
		t.Errorf("expected rotation under load, got files %v", files)
	}
	for _, f := range files {
		for _, m := range readLines(t, f) { // every line must be whole JSON
			seen[fmt.Sprint(m["user"], "/", m["request-id"])] = true
		}
	}
	if len(seen) != writers*each {
		t.Errorf("found %d distinct events, want %d", len(seen), writers*each)
	}
}

func TestFromConfig(t *testing.T) {
	cfg := config.New()
	l, err := FromConfig(cfg)
	if err != nil || l != nil {
		t.Fatalf("no path: got %v, %v; want nil, nil", l, err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	for k, v := range map[string]string{
		"security.audit.log.path":        path,
		"security.audit.log.level":       "all",
		"security.audit.log.max-size":    "1kb",
		"security.audit.log.max-backups": "2",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	l, err = FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.all || l.opts.MaxSize != 1024 || l.opts.MaxBackups != 2 {
		t.Errorf("options = %+v all=%v", l.opts, l.all)
	}
	if err := cfg.Set("security.audit.log.level", "loud"); err == nil {
		t.Error("enum accepted level loud")
	}
	// Defaults.
	cfg2 := config.New()
	cfg2.Set("security.audit.log.path", filepath.Join(t.TempDir(), "a.log"))
	l2, err := FromConfig(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.all || l2.none || l2.opts.MaxSize != DefaultMaxSize || l2.opts.MaxBackups != DefaultMaxBackups {
		t.Errorf("defaults = %+v all=%v none=%v", l2.opts, l2.all, l2.none)
	}
}
