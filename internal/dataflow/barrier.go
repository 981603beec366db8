package dataflow

import (
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// aligner tracks the barriers of a task with input (docs/architecture.md §6.5, steps 3-4).
//
// Exactly once: the channel that delivered barrier N is blocked, so none of its records
// after the barrier reaches the operators before the snapshot; when every channel that has
// not ended delivered N, all are unblocked and the task snapshots. At least once: nothing is
// blocked, barriers are only counted. In both modes a barrier of a higher id while N is
// pending abandons N (the task declines it as subsumed), a lower or already handled id is
// ignored, a channel that ended is not waited for, and a task with a single live channel
// never blocks.
type aligner struct {
	gate    blocker
	exactly bool
	ended   []bool // channel delivered its end of partition
	live    int    // channels not ended

	cur     event.Barrier // the barrier being aligned; ID 0: none
	seen    []bool        // per channel: delivered cur
	nseen   int           // live channels that delivered cur
	blocked []int         // channels blocked for cur
	start   time.Time     // first barrier of cur
	last    int64         // highest id completed, cancelled or abandoned
}

// blocker is the part of InputGate the aligner uses.
type blocker interface {
	Block(ch int)
	Unblock(ch int)
}

func newAligner(gate blocker, channels int, exactly bool) *aligner {
	return &aligner{gate: gate, exactly: exactly, ended: make([]bool, channels), live: channels, seen: make([]bool, channels)}
}

// alignResult is what the task must do after an input event.
type alignResult struct {
	snapshot  bool          // alignment of barrier done: snapshot it
	barrier   event.Barrier // the barrier to snapshot
	alignment time.Duration // first barrier to the last
	subsumed  int64         // a pending checkpoint abandoned for a newer one: decline it
	cancel    int64         // forward CANCEL_BARRIER of this id downstream
}

// barrier handles barrier b from channel ch.
func (a *aligner) barrier(ch int, b event.Barrier) (r alignResult) {
	if b.ID <= a.last || (a.cur.ID != 0 && b.ID < a.cur.ID) {
		return r // late: its checkpoint was handled or abandoned already
	}
	if a.cur.ID != 0 && b.ID > a.cur.ID {
		r.subsumed = a.cur.ID
		a.last = a.cur.ID
		a.reset()
	}
	if a.cur.ID == 0 {
		a.cur, a.start = b, time.Now()
	}
	if a.seen[ch] {
		return r // a channel delivers each barrier once; a repeat changes nothing
	}
	a.seen[ch] = true
	a.nseen++
	if a.nseen >= a.live {
		return a.complete(r)
	}
	if a.exactly {
		a.gate.Block(ch)
		a.blocked = append(a.blocked, ch)
	}
	return r
}

// cancelBarrier handles CANCEL_BARRIER id from a channel: the checkpoint was abandoned
// upstream, so waiting for its barrier on other channels is pointless.
func (a *aligner) cancelBarrier(id int64) (r alignResult) {
	if id <= a.last || (a.cur.ID != 0 && id < a.cur.ID) {
		return r
	}
	if a.cur.ID != 0 && id > a.cur.ID {
		r.subsumed = a.cur.ID
	}
	a.reset()
	a.last = id
	r.cancel = id
	return r
}

// aborted handles the abort of checkpoint id notified through the mailbox.
func (a *aligner) aborted(id int64) {
	if a.cur.ID != 0 && a.cur.ID <= id {
		a.reset()
	}
	a.last = max(a.last, id)
}

// channelEnded handles the end of channel ch's partition: it is no longer waited for.
func (a *aligner) channelEnded(ch int) (r alignResult) {
	if a.ended[ch] {
		return r
	}
	a.ended[ch] = true
	a.live--
	if a.cur.ID == 0 {
		return r
	}
	if a.seen[ch] {
		a.nseen--
	}
	if a.nseen >= a.live {
		return a.complete(r)
	}
	return r
}

func (a *aligner) complete(r alignResult) alignResult {
	r.snapshot, r.barrier, r.alignment = true, a.cur, time.Since(a.start)
	a.last = a.cur.ID
	a.reset()
	return r
}

// reset unblocks every channel blocked for the current barrier and forgets it.
func (a *aligner) reset() {
	for _, ch := range a.blocked {
		a.gate.Unblock(ch)
	}
	a.blocked = a.blocked[:0]
	clear(a.seen)
	a.nseen = 0
	a.cur = event.Barrier{}
}
