package dataflow

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// Mailbox carries control to a task's goroutine, the only one that touches its operators:
// the TaskManager posts, the task runs the mail between two elements or two Poll calls. Post
// never blocks; Wake is ready while mail is pending.
type Mailbox struct {
	mu      sync.Mutex
	mail    []Mail
	pending atomic.Bool   // len(mail) > 0, read by the task once per element or Poll
	wake    chan struct{} // holds one token while mail is pending
}

// NewMailbox returns an empty mailbox.
func NewMailbox() *Mailbox { return &Mailbox{wake: make(chan struct{}, 1)} }

// MailKind is what a Mail asks of the task.
type MailKind uint8

const (
	// MailTrigger asks a source task to take a checkpoint or savepoint: it injects the
	// barrier between two Poll calls.
	MailTrigger MailKind = iota + 1
	// MailComplete tells the task that checkpoint ID completed.
	MailComplete
	// MailAborted tells the task that checkpoint ID was abandoned.
	MailAborted

	// mailCancelDownstream is posted by the task's own snapshot goroutine: the
	// asynchronous part of checkpoint ID failed, so the task goroutine, the only writer of
	// its outputs, sends CANCEL_BARRIER ID downstream.
	mailCancelDownstream MailKind = 100
	// mailTick is posted by the task's own wake-up timer: processing-time timers are due, or
	// it is time for periodic watermarks.
	mailTick MailKind = 101
)

func (k MailKind) String() string {
	switch k {
	case MailTrigger:
		return "trigger"
	case MailComplete:
		return "checkpoint complete"
	case MailAborted:
		return "checkpoint aborted"
	}
	return fmt.Sprintf("mail kind %d", uint8(k))
}

// Mail is one control message for a task.
type Mail struct {
	Kind    MailKind
	Barrier event.Barrier // MailTrigger
	Target  string        // MailTrigger of a savepoint: its directory
	ID      int64         // MailComplete, MailAborted
	// Final (MailComplete): the job's final checkpoint, in which every task had finished,
	// completed and was notified: every task ends now. Until then a finished task keeps
	// taking checkpoints, since another may still be running.
	Final bool
}

// Post queues mail for the task. It never blocks.
func (m *Mailbox) Post(mail Mail) {
	m.mu.Lock()
	m.mail = append(m.mail, mail)
	m.pending.Store(true)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default: // a token is there already
	}
}

// Wake is ready while mail is pending. A nil mailbox never wakes.
func (m *Mailbox) Wake() <-chan struct{} {
	if m == nil {
		return nil
	}
	return m.wake
}

// Pending reports whether mail is waiting: one atomic load, for the task's record loop.
func (m *Mailbox) Pending() bool { return m != nil && m.pending.Load() }

// take removes and returns the pending mail, oldest first.
func (m *Mailbox) take() []Mail {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mail := m.mail
	m.mail = nil
	m.pending.Store(false)
	select {
	case <-m.wake:
	default:
	}
	return mail
}
