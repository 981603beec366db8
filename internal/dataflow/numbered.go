package dataflow

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/internal/state"
)

// numberedBatch is how many records one Poll of a numbered source emits at most: the task
// checks for cancellation and mail between two batches.
const numberedBatch = 256

// numberedSplitsState is the name of a numbered source's split list state: one entry per
// split it reads, (split, S, next number), so that splits move whole when a job is restored
// at another parallelism.
const numberedSplitsState = "splits"

// numberedSource is what the generator and the nexmark source share: record numbers 0, 1,
// 2, ... divided into S = max-parallelism splits (split k holds k, k+S, k+2S, ...), emitted
// round-robin over the subtask's splits in split order (on a fresh start its contiguous
// range [F, L] gives F, F+1, ..., L, S+F, ...: one subtask emits 0, 1, 2, ...), optionally
// paced to a rate, with each split's next number checkpointed. So the subtasks together
// emit each number once at any parallelism and after any restore. The embedding source
// makes record n in its emit function.
type numberedSource struct {
	NoInput
	limit  int64   // numbers below it are emitted; 0: unbounded
	splits int64   // S
	rate   float64 // per subtask; 0: as fast as possible
	list   *state.ListState

	own  []numberedSplit // the splits read, in split order
	cur  int             // the split whose number comes next
	live int             // splits not yet exhausted
	n    int64           // records emitted by this subtask in this run, for pacing

	start time.Time
	// Pacing: when ahead of its rate, Poll answers PollIdle and a timer makes Available
	// ready at the next record's due time.
	timer *time.Timer
	ready chan struct{}
}

// numberedSplit is one split and the next number it emits; done once it has no more.
type numberedSplit struct {
	split, next int64
	done        bool
}

// open takes the subtask's splits, restored or fresh. limit is the count of numbers (0:
// unbounded) and rate the records per second over all subtasks (0: unpaced).
func (s *numberedSource) open(rc *RuntimeContext, limit int64, rate float64) error {
	s.limit, s.splits = limit, int64(rc.maxParallelism())
	list, err := rc.ListState(numberedSplitsState, state.Split)
	if err != nil {
		return err
	}
	s.list = list
	if rc.restoredList(numberedSplitsState) {
		for _, e := range list.Entries() {
			sp, err := decodeSplitPosition(e, s.splits, 1)
			if err != nil {
				return opErr(rc.Operator, fmt.Errorf("restore from checkpoint %d: %w", rc.Restored, err))
			}
			next := sp.pos[0]
			if next != math.MaxInt64 && (next < sp.split || (next-sp.split)%s.splits != 0) {
				return opErr(rc.Operator, fmt.Errorf("restore from checkpoint %d: split %d: number %d is not of this split", rc.Restored, sp.split, next))
			}
			s.own = append(s.own, numberedSplit{split: sp.split, next: next})
		}
		slices.SortFunc(s.own, func(a, b numberedSplit) int { return cmp.Compare(a.split, b.split) })
	} else {
		own := rc.Splits()
		for k := int64(own.First); k <= int64(own.Last); k++ {
			s.own = append(s.own, numberedSplit{split: k, next: k})
		}
	}
	for i := range s.own {
		sp := &s.own[i]
		sp.done = sp.next == math.MaxInt64 || (s.limit != 0 && sp.next >= s.limit)
		if !sp.done {
			s.live++
		}
	}
	if rate > 0 {
		// The subtask's share of the numbers is its share of the splits.
		s.rate = rate * float64(len(s.own)) / float64(s.splits)
		s.ready = make(chan struct{}, 1)
	}
	s.start = time.Now()
	return nil
}

// poll emits at most numberedBatch records through emit, which makes and collects record
// number n.
func (s *numberedSource) poll(emit func(n int64) error) (PollStatus, error) {
	for range numberedBatch {
		if s.live == 0 {
			return PollEnd, nil
		}
		if s.rate > 0 {
			// Pace against the start time rather than sleeping per record, so timer slack
			// does not accumulate; waiting only when 2 ms ahead keeps timer calls rare.
			due := s.start.Add(time.Duration(float64(s.n) / s.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 2*time.Millisecond {
				s.wakeAfter(wait)
				return PollIdle, nil
			}
		}
		for s.own[s.cur].done {
			s.cur = (s.cur + 1) % len(s.own)
		}
		sp := &s.own[s.cur]
		n := sp.next
		if err := emit(n); err != nil {
			return PollEnd, err
		}
		s.n++
		if n > math.MaxInt64-s.splits || (s.limit != 0 && n+s.splits >= s.limit) {
			sp.done = true
			s.live--
		} else {
			sp.next = n + s.splits
		}
		if s.cur++; s.cur == len(s.own) {
			s.cur = 0
		}
	}
	return PollMore, nil
}

// SnapshotState implements Snapshotter: one entry per split, its next number (MaxInt64 once
// exhausted, so it stays exhausted after a restore).
func (s *numberedSource) SnapshotState(CheckpointInfo) (func(context.Context) error, error) {
	entries := make([][]byte, len(s.own))
	for i, sp := range s.own {
		next := sp.next
		if sp.done {
			next = math.MaxInt64
		}
		entries[i] = appendSplitPosition(nil, sp.split, s.splits, next)
	}
	s.list.Update(entries)
	return nil, nil
}

// wakeAfter makes Available ready after d.
func (s *numberedSource) wakeAfter(d time.Duration) {
	if s.timer == nil {
		s.timer = time.AfterFunc(d, func() {
			select {
			case s.ready <- struct{}{}:
			default:
			}
		})
		return
	}
	s.timer.Reset(d)
}

// Available implements Source: ready when a paced source's next record is due.
func (s *numberedSource) Available() <-chan struct{} { return s.ready }

func (s *numberedSource) Finish() error { return nil }

func (s *numberedSource) Close() error {
	if s.timer != nil {
		s.timer.Stop()
	}
	return nil
}
