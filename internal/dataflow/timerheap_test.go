package dataflow

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTimerHeapOrder: the typed heap pops timers in time order, after pushes and after
// init of an unordered slice (a restore), with pops interleaved.
func TestTimerHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var h timerHeap
		var want []int64
		n := r.IntN(200)
		for range n {
			ts := r.Int64N(100) - 50
			want = append(want, ts)
			if round%2 == 0 {
				h.push(timerEntry{time: ts})
			} else {
				h = append(h, timerEntry{time: ts})
			}
		}
		if round%2 == 1 {
			h.init()
		}
		slices.Sort(want)
		var got []int64
		for h.Len() > 0 {
			got = append(got, h.pop().time)
			// Push one back now and then: the heap must stay a heap.
			if len(got)%7 == 0 {
				ts := got[len(got)-1] + r.Int64N(20)
				h.push(timerEntry{time: ts})
				want = append(want, ts)
				slices.Sort(want)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: popped %v, want %v", round, got, want)
		}
	}
}
