package taskmanager

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A task that does not stop keeps the TaskManager at most the grace period, and the log names
// it.
func TestShutdownGracePeriod(t *testing.T) {
	var logs bytes.Buffer
	tm := &TaskManager{log: slog.New(slog.NewTextHandler(&logs, nil)), jobs: map[attemptKey]*jobRun{}}
	jr := &jobRun{key: attemptKey{"j1", 0}, tasks: map[[2]int]*runningTask{{2, 1}: {job: "j1", vertex: 2, subtask: 1}}}
	tm.jobs[jr.key] = jr
	stuck := make(chan struct{})
	defer close(stuck)
	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		<-stuck
	}()
	start := time.Now()
	tm.waitStopped(200 * time.Millisecond)
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("waitStopped returned after %s, want the grace period of 200ms", d)
	}
	for _, want := range []string{"taskmanager.shutdown.grace-period", "job j1 attempt 0 vertex 2 subtask 1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q does not name %q", logs.String(), want)
		}
	}

	// Tasks that stop let it return at once.
	tm2 := &TaskManager{log: slog.New(slog.NewTextHandler(&logs, nil)), jobs: map[attemptKey]*jobRun{}}
	tm2.wg.Add(1)
	go func() { time.Sleep(20 * time.Millisecond); tm2.wg.Done() }()
	start = time.Now()
	tm2.waitStopped(time.Minute)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waitStopped took %s with tasks that stopped", d)
	}
}
