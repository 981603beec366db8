package dataflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// logWriter records what a subtask sends to one target.
type logWriter struct{ log []string }

func (w *logWriter) WriteRecord(b []byte) error {
	var r Record
	if err := DecodeRecord(b, &r); err != nil {
		return err
	}
	w.log = append(w.log, fmt.Sprint("record ", r))
	return nil
}

func (w *logWriter) WriteTimedRecord(b []byte) error {
	ts, rec, err := SplitTimestamp(b)
	if err != nil {
		return err
	}
	var r Record
	if err := DecodeRecord(rec, &r); err != nil {
		return err
	}
	w.log = append(w.log, fmt.Sprintf("record %v @%d", r, ts))
	return nil
}

func (w *logWriter) WriteEvent(p []byte) error {
	e, err := event.Decode(p)
	if err != nil {
		return err
	}
	w.log = append(w.log, e.Kind.String())
	return nil
}

func (w *logWriter) Close() error { w.log = append(w.log, "close"); return nil }

// scriptGate delivers its script, then io.EOF; before element k it calls before(k).
type scriptGate struct {
	noBlocking
	channels int
	script   []event.Delivery
	k        int
	before   func(k int)
}

func (g *scriptGate) NextDelivery(context.Context, <-chan struct{}) (event.Delivery, error) {
	if g.before != nil {
		g.before(g.k)
	}
	if g.k == len(g.script) {
		return event.Delivery{}, io.EOF
	}
	g.k++
	return g.script[g.k-1], nil
}

func (g *scriptGate) Channels() int { return g.channels }

// endSpec: two generator subtasks, a count per key in one subtask, printed by two.
const endSpec = "name: j\noperators:\n  - {name: g, type: generator, count: 4, keys: 2, parallelism: 2}\n" +
	"  - {name: k, type: key_by, input: g, key: key}\n" +
	"  - {name: c, type: aggregate, input: k, function: count, parallelism: 1}\n" +
	"  - {name: p, type: print, input: c, parallelism: 2}\n"

func TestSourceSendsEndOfDataThenEnds(t *testing.T) {
	p := mustPlan(t, endSpec, nil, 1)
	w := &logWriter{}
	// Subtask 0 owns splits 0..63 of 128: all four ids.
	if err := p.RunSubtask(context.Background(), 0, 0, TaskIO{Outputs: map[int][]RecordWriter{0: {w}}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"record 0 key-0 0", "record 1 key-1 1", "record 2 key-0 2", "record 3 key-1 3", "END_OF_DATA", "close"}
	if !slices.Equal(w.log, want) {
		t.Errorf("source subtask 0 sent %q, want %q", w.log, want)
	}
}

func rec(ch int32, r Record) event.Delivery {
	return event.Delivery{Channel: ch, Kind: event.DeliverRecord, Data: AppendRecord(nil, r)}
}

func endOfData(ch int32) event.Delivery {
	return event.Delivery{Channel: ch, Kind: event.DeliverEvent, Data: event.Append(nil, event.Event{Kind: event.KindEndOfData})}
}

func end(ch int32) event.Delivery { return event.Delivery{Channel: ch, Kind: event.DeliverEnd} }

// TestEndOfDataDrivesFinish: the task finishes its chain when the last channel delivers
// END_OF_DATA, before any channel's end of partition, and sends END_OF_DATA on; a channel
// that ends without END_OF_DATA was stopped, and the chain closes unfinished.
func TestEndOfDataDrivesFinish(t *testing.T) {
	p := mustPlan(t, endSpec, nil, 1)
	a, b := Record{Int(0), String("key-0"), Int(0)}, Record{Int(1), String("key-1"), Int(1)}
	ws := []*logWriter{{}, {}}
	sent := func() int { return len(ws[0].log) + len(ws[1].log) }
	gate := &scriptGate{channels: 2, script: []event.Delivery{rec(0, a), endOfData(0), rec(1, b), endOfData(1), end(0), end(1)}}
	// Finish emits the counts: nothing before the last END_OF_DATA, all of it right after.
	gate.before = func(k int) {
		switch {
		case k <= 3 && sent() != 0:
			t.Errorf("sent %v %v before the last END_OF_DATA", ws[0].log, ws[1].log)
		case k == 4 && sent() != 4: // two counts, two END_OF_DATA
			t.Errorf("after the last END_OF_DATA sent %v %v, want the counts and END_OF_DATA", ws[0].log, ws[1].log)
		}
	}
	if err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: gate, Outputs: map[int][]RecordWriter{1: {ws[0], ws[1]}}}); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(ws[0].log), ws[1].log...)
	slices.Sort(all)
	if want := []string{"END_OF_DATA", "END_OF_DATA", "close", "close", "record key-0 1", "record key-1 1"}; !slices.Equal(all, want) {
		t.Errorf("sent %q, want %q", all, want)
	}
	for i, w := range ws {
		if n := len(w.log); n < 2 || w.log[n-2] != "END_OF_DATA" || w.log[n-1] != "close" {
			t.Errorf("target %d: %q, want END_OF_DATA then close last", i, w.log)
		}
	}

	// Stopped: channel 1 ends without END_OF_DATA.
	ws = []*logWriter{{}, {}}
	gate = &scriptGate{channels: 2, script: []event.Delivery{rec(0, a), endOfData(0), rec(1, b), end(0), end(1)}}
	if err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: gate, Outputs: map[int][]RecordWriter{1: {ws[0], ws[1]}}}); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if !slices.Equal(w.log, []string{"close"}) {
			t.Errorf("stopped input: target %d got %q, want only close (no results, no END_OF_DATA)", i, w.log)
		}
	}
}

func TestBadInputEvents(t *testing.T) {
	p := mustPlan(t, endSpec, nil, 1)
	a := Record{Int(0), String("key-0"), Int(0)}
	barrier := event.Delivery{Channel: 1, Kind: event.DeliverEvent, Data: event.Append(nil, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: 3, Timestamp: 1}})}
	for _, tt := range []struct {
		script []event.Delivery
		want   string
	}{
		{[]event.Delivery{endOfData(0), rec(0, a)}, "input channel 0 sent a record after END_OF_DATA"},
		{[]event.Delivery{endOfData(0), endOfData(0)}, "input channel 0 sent END_OF_DATA twice"},
		{[]event.Delivery{barrier}, "input channel 1 sent BARRIER 3"},
		{[]event.Delivery{rec(2, a)}, "input delivered channel 2 of 2"},
		{[]event.Delivery{{Kind: event.DeliverEvent, Data: []byte{99}}}, "input channel 0"},
	} {
		w := &logWriter{}
		err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: &scriptGate{channels: 2, script: tt.script},
			Outputs: map[int][]RecordWriter{1: {w, &logWriter{}}}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.script, err, tt.want)
		}
	}
}

// TestMailWakesBlockedRead: mail posted while the task waits for input is run at once.
func TestMailWakesBlockedRead(t *testing.T) {
	p := mustPlan(t, endSpec, nil, 1)
	mb := NewMailbox()
	gate := newLocalGate(2) // nothing ever arrives
	done := make(chan error, 1)
	go func() {
		done <- p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: gate, Mailbox: mb,
			Outputs: map[int][]RecordWriter{1: {&logWriter{}, &logWriter{}}}})
	}()
	mb.Post(Mail{Kind: MailTrigger})
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "checkpointing is not enabled for this task") {
			t.Errorf("got %v, want the trigger refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a task blocked on its input did not run its mail")
	}
}

// TestLocalGateDeliveries: RunLocal's gate numbers its producers' channels and delivers
// each channel's records, events and end in order, then io.EOF.
func TestLocalGateDeliveries(t *testing.T) {
	ctx := context.Background()
	g := newLocalGate(2)
	w0, w1 := g.writer(ctx, 0), g.writer(ctx, 1)
	eod := event.Append(nil, event.Event{Kind: event.KindEndOfData})
	if err := w1.WriteEvent([]byte{99}); err == nil {
		t.Error("a bad event payload was written")
	}
	for _, step := range []func() error{
		func() error { return w0.WriteRecord([]byte("a")) }, func() error { return w1.WriteRecord([]byte("b")) },
		func() error { return w0.WriteEvent(eod) }, func() error { return w0.Close() }, func() error { return w1.Close() },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for {
		d, err := g.NextDelivery(ctx, nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %v %q", d.Channel, d.Kind, d.Data))
	}
	want := []string{`0 record "a"`, `1 record "b"`, fmt.Sprintf("0 event %q", eod), `0 end of partition ""`, `1 end of partition ""`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
