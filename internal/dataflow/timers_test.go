package dataflow

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// timerLog is a TimerHandler recording what fired; at a given time it registers another
// timer, as a window registering its cleanup does.
type timerLog struct {
	s     *timerService
	fired []string
	chain map[int64]int64 // on firing at key time, register an event-time timer at value
}

func (l *timerLog) OnTimer(t Timer) error {
	l.fired = append(l.fired, fmt.Sprintf("%v %s@%d/%s", t.Domain, t.Key.Text(), t.Time, t.Namespace))
	if next, ok := l.chain[t.Time]; ok {
		return l.s.RegisterEventTimeTimer(next, []byte("chained"))
	}
	return nil
}

func newTimerTest(t *testing.T) (*timerService, *timerLog, func(key string)) {
	t.Helper()
	b, err := hashmap.Factory{}.New(context.Background(), state.Config{Operator: "op", KeyGroups: state.KeyGroupRange{First: 0, Last: 127}, MaxParallelism: 128}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tk := &task{wakeMs: math.MaxInt64, mail: NewMailbox(), keyRC: &RuntimeContext{}, linkWM: []int64{NoTimestamp}}
	t.Cleanup(func() {
		if tk.wakeTimer != nil {
			tk.wakeTimer.Stop()
		}
		b.Close()
	})
	s := &timerService{t: tk}
	l := &timerLog{s: s, chain: map[int64]int64{}}
	if err := s.open(l, b, 128); err != nil {
		t.Fatal(err)
	}
	setKey := func(key string) {
		k := appendValue(nil, String(key))
		b.SetCurrentKey(k, keygroup.Of(keygroup.Hash(k), 128))
	}
	return s, l, setKey
}

// TestTimersFireInOrder: event-time timers fire in time order up to the watermark, once per
// (key, namespace, time) however often registered, not at all when deleted, and timers that
// OnTimer registers at or below the watermark fire in the same advance.
func TestTimersFireInOrder(t *testing.T) {
	s, l, setKey := newTimerTest(t)
	setKey("a")
	for _, ts := range []int64{30, 10, 20, 10} {
		if err := s.RegisterEventTimeTimer(ts, []byte("w")); err != nil {
			t.Fatal(err)
		}
	}
	s.RegisterEventTimeTimer(-5, []byte("neg"))
	setKey("b")
	s.RegisterEventTimeTimer(15, []byte("w"))
	s.RegisterEventTimeTimer(25, []byte("w"))
	s.DeleteEventTimeTimer(25, []byte("w"))
	s.DeleteEventTimeTimer(99, []byte("none")) // no such timer: nothing happens
	s.RegisterProcessingTimeTimer(12, []byte("p"))
	l.chain[20] = 22
	if err := s.fire(EventTime, 20); err != nil {
		t.Fatal(err)
	}
	if err := s.fire(EventTime, 100); err != nil {
		t.Fatal(err)
	}
	want := []string{"event time a@-5/neg", "event time a@10/w", "event time b@15/w", "event time a@20/w", "event time a@22/chained", "event time a@30/w"}
	if !slices.Equal(l.fired, want) {
		t.Fatalf("fired %v, want %v", l.fired, want)
	}
	if err := s.fire(ProcessingTime, 11); err != nil || len(l.fired) != 6 {
		t.Fatalf("a processing-time timer fired early: %v %v", l.fired, err)
	}
	if err := s.fire(ProcessingTime, 12); err != nil || l.fired[6] != "processing time b@12/p" {
		t.Fatalf("processing-time timer: %v %v", l.fired, err)
	}
	if s.t.wakeMs != 12 {
		t.Fatalf("the task was to wake at %d, want 12 (the processing-time timer)", s.t.wakeMs)
	}
}

// TestTimersNeedAKeyedHandler: an operator without keyed state gets an error that says
// what timers need; the clocks work anywhere.
func TestTimersNeedAKeyedHandler(t *testing.T) {
	tk := &task{linkWM: []int64{42}}
	s := &timerService{t: tk}
	if err := s.RegisterEventTimeTimer(1, nil); err == nil || !strings.Contains(err.Error(), "only a keyed operator") {
		t.Fatalf("got %v", err)
	}
	if s.CurrentWatermark() != 42 || s.CurrentProcessingTime() <= 0 {
		t.Fatalf("clocks: %d %d", s.CurrentWatermark(), s.CurrentProcessingTime())
	}
	if w := (&RuntimeContext{}).Timers().CurrentWatermark(); w != NoTimestamp {
		t.Fatalf("a context without a task: watermark %d", w)
	}
}
