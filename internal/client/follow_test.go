package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeJobManager serves GET /jobs/{id} and /jobs/{id}/output from a script: the job's
// state and the lines printed so far advance with each poll of the job.
type fakeJobManager struct {
	mu     sync.Mutex
	polls  int
	states []string   // state at poll i (the last one repeats)
	lines  [][]string // lines printed by poll i
	lost   int64      // next-offset jumps this far at the first answer

	outputPolls int
}

func (f *fakeJobManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/jobs/j1":
		i := min(f.polls, len(f.states)-1)
		f.polls++
		printed := f.lost
		for _, ls := range f.lines[:min(i+1, len(f.lines))] {
			printed += int64(len(ls))
		}
		json.NewEncoder(w).Encode(map[string]any{"jid": "j1", "state": f.states[i], "vertices": []any{}, "printed-lines": printed})
	case r.URL.Path == "/jobs/j1/output":
		f.outputPolls++
		// What was printed by the last poll of the job.
		i := max(f.polls-1, 0)
		var all []string
		for _, ls := range f.lines[:min(i+1, len(f.lines))] {
			all = append(all, ls...)
		}
		off, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
		// The first f.lost lines are gone: offsets start after them.
		start := max(off, f.lost)
		end := f.lost + int64(len(all))
		lines := []string{}
		if start < end {
			lines = all[start-f.lost:]
		}
		json.NewEncoder(w).Encode(map[string]any{"lines": lines, "next-offset": max(end, off), "dropped": 0})
	default:
		http.NotFound(w, r)
	}
}

// TestFollowStreamsOutput: sluice run's follower writes each printed line once, in order,
// escaped; clears the status line before writing and redraws it after; reports lost lines;
// and fetches the last lines after the job ended.
func TestFollowStreamsOutput(t *testing.T) {
	fake := &fakeJobManager{
		states: []string{"CREATED", "RUNNING", "RUNNING", "FINISHED"},
		lines:  [][]string{nil, {"a 1", "b 2"}, {"c 3\x1b[2J"}, {"last"}},
		lost:   2,
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// One terminal: the status line and the records interleave on it.
	var term, notices bytes.Buffer
	status := NewStatusLine(&term, nil)
	j, err := c.Follow(context.Background(), "j1", FollowOptions{Output: &term, Status: status, Notices: &notices, Interval: time.Millisecond})
	if err != nil || j.State != "FINISHED" {
		t.Fatalf("follow: %v, %+v", err, j)
	}
	out := term.String()
	// Without the status line's redraws, what remains is the records, each once.
	records := regexp.MustCompile("\r[^\r\n]*\x1b\\[K").ReplaceAllString(out, "")
	if want := "a 1\nb 2\nc 3\\u001b[2J\nlast\n"; records != want {
		t.Errorf("records on the terminal %q, want %q (all: %q)", records, want, out)
	}
	// Each batch of records starts on a cleared line.
	for _, rec := range []string{"a 1\n", "c 3", "last\n"} {
		i := strings.Index(out, rec)
		if i < 4 || out[i-4:i] != "\r\x1b[K" {
			t.Errorf("%q is not written on a cleared line: %q", rec, out)
		}
	}
	if !strings.Contains(out, "CREATED") || !strings.Contains(out, "RUNNING") {
		t.Errorf("the status line did not show the states: %q", out)
	}
	if i := strings.LastIndex(out, "\r"); i >= 0 && out[i:] != "\r\x1b[K" && !strings.HasSuffix(out, "last\n") {
		t.Errorf("the status line was left drawn after the job ended: %q", out)
	}
	if !strings.Contains(notices.String(), "2 printed lines of job j1 were lost") {
		t.Errorf("notices %q, want the 2 lost lines counted", notices.String())
	}
}

// TestFollowWithoutTerminal: with no status line, the output carries the records only.
func TestFollowWithoutTerminal(t *testing.T) {
	fake := &fakeJobManager{states: []string{"RUNNING", "FINISHED"}, lines: [][]string{{"x 1"}, {"y 2"}}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, _ := New(srv.URL)
	var out bytes.Buffer
	if _, err := c.Follow(context.Background(), "j1", FollowOptions{Output: &out, Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "x 1\ny 2\n" {
		t.Errorf("output %q", out.String())
	}
}

// TestFollowAsksForOutputOnlyWhenThereIsSome: a job that prints nothing costs one request
// per poll, and one last look at its output when it has ended.
func TestFollowAsksForOutputOnlyWhenThereIsSome(t *testing.T) {
	fake := &fakeJobManager{states: []string{"CREATED", "RUNNING", "RUNNING", "RUNNING", "FINISHED"}, lines: [][]string{nil}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, _ := New(srv.URL)
	var out bytes.Buffer
	if _, err := c.Follow(context.Background(), "j1", FollowOptions{Output: &out, Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if fake.outputPolls != 1 || out.Len() != 0 {
		t.Errorf("%d requests for output of a job that printed nothing (want 1, after it ended); output %q", fake.outputPolls, out.String())
	}
}
