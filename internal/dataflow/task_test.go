package dataflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

func TestMailbox(t *testing.T) {
	m := NewMailbox()
	if m.Pending() {
		t.Fatal("a new mailbox has mail pending")
	}
	m.Post(Mail{Kind: MailComplete, ID: 1})
	m.Post(Mail{Kind: MailAborted, ID: 2})
	if !m.Pending() {
		t.Fatal("no mail pending after Post")
	}
	select {
	case <-m.Wake():
	default:
		t.Fatal("Wake not ready with mail pending")
	}
	got := m.take()
	if len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 {
		t.Fatalf("took %+v, want both mails oldest first", got)
	}
	if m.Pending() || len(m.take()) != 0 {
		t.Fatal("mail left after take")
	}
	var none *Mailbox
	if none.Pending() || none.Wake() != nil || none.take() != nil {
		t.Fatal("a nil mailbox has mail")
	}
}

type listenerOp struct {
	blackholeSink
	got []string
}

func (l *listenerOp) NotifyCheckpointComplete(id int64) error {
	l.got = append(l.got, fmt.Sprintf("complete %d", id))
	return nil
}

func (l *listenerOp) NotifyCheckpointAborted(id int64) error {
	l.got = append(l.got, fmt.Sprintf("aborted %d", id))
	if id == 13 {
		return errors.New("unlucky")
	}
	return nil
}

// Mail runs in the task goroutine: outcomes reach the operators that listen for them, and a
// trigger, which tasks cannot honour before barriers exist, fails the task rather than being
// dropped.
func TestTaskRunsMail(t *testing.T) {
	l := &listenerOp{}
	tk := &task{name: `vertex "v" subtask 0`, mail: NewMailbox(), listeners: []link{{name: "sink", op: l}}}
	tk.mail.Post(Mail{Kind: MailComplete, ID: 7})
	tk.mail.Post(Mail{Kind: MailAborted, ID: 8})
	if err := tk.runMail(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.got, ", "); got != "complete 7, aborted 8" {
		t.Errorf("listener heard %q", got)
	}
	tk.mail.Post(Mail{Kind: MailAborted, ID: 13})
	if err := tk.runMail(); err == nil || err.Error() != `operator "sink": checkpoint aborted 13: unlucky` {
		t.Errorf("got %v, want the listener's error naming it", err)
	}
	tk.mail.Post(Mail{Kind: MailTrigger, Barrier: event.Barrier{ID: 1}})
	if err := tk.runMail(); err == nil || !strings.Contains(err.Error(), "trigger mail: checkpointing is not enabled for this task") {
		t.Errorf("got %v, want the trigger refused", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the test to read while a task writes.
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

// A line from a peer that then stays quiet reaches the sink at once, and cancelling the job
// stops the task while its reader is blocked on the connection.
func TestSocketQuietPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerDone := make(chan struct{})
	defer close(peerDone)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("hello\r\n"))
		<-peerDone
	}()
	spec := fmt.Sprintf("name: j\noperators:\n  - {name: s, type: socket, host: 127.0.0.1, port: %d}\n"+
		"  - {name: p, type: print, input: s}\n", ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- RunLocal(ctx, mustPlan(t, spec, nil, 1), &out) }()
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != "hello\n" {
		if time.Now().After(deadline) {
			t.Fatalf("output %q after 10s, want the peer's line", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("socket task did not stop on cancel")
	}
}

// A failure in the chain closes a file sink without finishing it: its part file is removed,
// none is committed, and the error is the failing operator's.
func TestFailureLeavesNoPartFile(t *testing.T) {
	out := t.TempDir()
	spec := "name: j\noperators:\n  - {name: g, type: generator, count: 1000}\n" +
		"  - {name: m, type: map, input: g, fields: {q: '10 / (id - 600)'}}\n" +
		"  - {name: o, type: file, input: m, path: " + out + "}\n"
	err := RunLocal(context.Background(), mustPlan(t, spec, nil, 1), nil)
	if err == nil || !strings.HasPrefix(err.Error(), `operator "m": `) || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("got %v, want the map's division by zero", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("files left after a failure: %v", entries)
	}
}
