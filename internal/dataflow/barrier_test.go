package dataflow

import (
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// blockLog records Block and Unblock calls.
type blockLog struct {
	blocked map[int]bool
	log     []string
}

func (g *blockLog) Block(ch int) {
	g.blocked[ch] = true
	g.log = append(g.log, "block", string(rune('0'+ch)))
}
func (g *blockLog) Unblock(ch int) {
	delete(g.blocked, ch)
	g.log = append(g.log, "unblock", string(rune('0'+ch)))
}

// TestAligner drives the aligner through sequences of barriers, cancels, aborts and ended
// channels and checks what it decides and which channels stay blocked.
func TestAligner(t *testing.T) {
	type step struct {
		op      string // barrier, cancel, abort, end
		ch      int
		id      int64
		snap    int64 // expected snapshot id (0: none)
		subsume int64
		cancel  int64
	}
	tests := []struct {
		name     string
		channels int
		exactly  bool
		steps    []step
		blocked  []int // at the end
	}{
		{"aligned", 3, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "barrier", ch: 2, id: 1}, {op: "barrier", ch: 1, id: 1, snap: 1}}, nil},
		{"blocks until aligned", 3, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "barrier", ch: 2, id: 1}}, []int{0, 2}},
		{"repeat on a channel", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "barrier", ch: 0, id: 1}}, []int{0}},
		{"one channel", 1, true, []step{{op: "barrier", ch: 0, id: 4, snap: 4}}, nil},
		{"subsumed", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "barrier", ch: 1, id: 2, subsume: 1}, {op: "barrier", ch: 0, id: 2, snap: 2}}, nil},
		{"late lower id ignored", 2, true, []step{{op: "barrier", ch: 0, id: 2}, {op: "barrier", ch: 1, id: 1}, {op: "barrier", ch: 1, id: 2, snap: 2}, {op: "barrier", ch: 0, id: 1}}, nil},
		{"done id ignored", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "barrier", ch: 1, id: 1, snap: 1}, {op: "barrier", ch: 0, id: 1}}, nil},
		{"cancel", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "cancel", ch: 1, id: 1, cancel: 1}, {op: "barrier", ch: 1, id: 1}, {op: "cancel", ch: 0, id: 1}}, nil},
		{"cancel of a newer id", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "cancel", ch: 1, id: 2, subsume: 1, cancel: 2}}, nil},
		{"cancel before any barrier", 2, true, []step{{op: "cancel", ch: 1, id: 3, cancel: 3}, {op: "barrier", ch: 0, id: 3}}, nil},
		{"abort unblocks", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "abort", id: 1}, {op: "barrier", ch: 1, id: 1}}, nil},
		{"ended channel", 3, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "end", ch: 2}, {op: "barrier", ch: 1, id: 1, snap: 1}}, nil},
		{"last awaited channel ends", 2, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "end", ch: 1, snap: 1}}, nil},
		{"aligned channel ends", 3, true, []step{{op: "barrier", ch: 0, id: 1}, {op: "end", ch: 0}, {op: "barrier", ch: 1, id: 1}, {op: "barrier", ch: 2, id: 1, snap: 1}}, nil},
		{"at least once never blocks", 2, false, []step{{op: "barrier", ch: 0, id: 1}, {op: "barrier", ch: 1, id: 1, snap: 1}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &blockLog{blocked: map[int]bool{}}
			a := newAligner(g, tc.channels, tc.exactly)
			for i, s := range tc.steps {
				var r alignResult
				switch s.op {
				case "barrier":
					r = a.barrier(s.ch, event.Barrier{ID: s.id})
				case "cancel":
					r = a.cancelBarrier(s.id)
				case "abort":
					a.aborted(s.id)
				case "end":
					r = a.channelEnded(s.ch)
				}
				snap := int64(0)
				if r.snapshot {
					snap = r.barrier.ID
				}
				if snap != s.snap || r.subsumed != s.subsume || r.cancel != s.cancel {
					t.Fatalf("step %d %+v: got snapshot %d, subsumed %d, cancel %d", i, s, snap, r.subsumed, r.cancel)
				}
			}
			var blocked []int
			for ch := range g.blocked {
				blocked = append(blocked, ch)
			}
			slices.Sort(blocked)
			if !slices.Equal(blocked, tc.blocked) {
				t.Fatalf("blocked at the end: %v, want %v (calls %v)", blocked, tc.blocked, g.log)
			}
			if !tc.exactly && len(g.log) > 0 {
				t.Fatalf("at least once blocked: %v", g.log)
			}
		})
	}
}
