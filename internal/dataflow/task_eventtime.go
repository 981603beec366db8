package dataflow

import (
	"math"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// The task's side of event time: watermarks through the chain, the input valve, periodic
// watermarks and idleness of the chain's generators, and the wake-ups of timers. Everything
// runs in the task goroutine; the only other goroutine is the wake-up timer's, which posts
// mailTick and touches nothing else.

// startTicks schedules the first periodic watermark of a task whose chain emits watermarks.
func (t *task) startTicks() {
	if !t.hasGens {
		return
	}
	t.nextTick = time.Now().Add(t.wmInterval).UnixMilli()
	t.wakeAt(t.nextTick)
}

// wakeAt makes the task run tick at ms (Unix ms) or earlier.
func (t *task) wakeAt(ms int64) {
	if ms >= t.wakeMs {
		return
	}
	t.wakeMs = ms
	d := time.Until(time.UnixMilli(ms))
	if t.wakeTimer == nil {
		mail := t.mail
		t.wakeTimer = time.AfterFunc(d, func() { mail.Post(Mail{Kind: mailTick}) })
		return
	}
	t.wakeTimer.Reset(d)
}

// tick runs from the mailbox: due processing-time timers, then periodic watermarks and
// idleness, then schedules the next wake-up.
func (t *task) tick() error {
	t.wakeMs = math.MaxInt64
	if t.finished || t.stopped {
		return nil // a finished or stopped chain emits nothing more
	}
	now := time.Now()
	ms := now.UnixMilli()
	if t.suspended != 0 {
		// A stop's savepoint is pending: nothing goes downstream after its barrier, so
		// timers and watermarks wait for its outcome (an abort resumes them).
		t.wakeAt(ms + t.wmInterval.Milliseconds())
		return nil
	}
	if t.timers != nil {
		if err := t.timers.fire(ProcessingTime, ms); err != nil {
			return named(t.chain[0].name, err)
		}
		if next, ok := t.timers.nextProcessing(); ok {
			t.wakeAt(next)
		}
	}
	if t.hasGens {
		if ms >= t.nextTick {
			if err := t.periodic(now); err != nil {
				return err
			}
			t.nextTick = ms + t.wmInterval.Milliseconds()
		}
		t.wakeAt(t.nextTick)
	}
	return nil
}

// periodic emits each generator's watermark if it advanced, or marks it idle after its idle
// timeout without records.
func (t *task) periodic(now time.Time) error {
	for _, g := range t.gens {
		if g == nil || g.wm == nil {
			continue
		}
		if g.goesIdle(now) {
			if err := t.genStatus(g, true); err != nil {
				return err
			}
			continue
		}
		if wm, ok := g.watermarkAt(); ok {
			g.emitted = wm
			if err := t.advance(g.link+1, wm); err != nil {
				return err
			}
		}
	}
	return nil
}

// endEventTime is called after link i finished: a generator there emits the final
// watermark, so every event-time timer downstream fires before END_OF_DATA.
func (t *task) endEventTime(i int) error {
	g := t.gens[i]
	if g == nil || g.wm == nil || g.emitted == math.MaxInt64 {
		return nil
	}
	if g.idle {
		if err := t.genStatus(g, false); err != nil {
			return err
		}
	}
	g.emitted = math.MaxInt64
	return t.advance(i+1, math.MaxInt64)
}

// inputWatermark acts on an advance of the input valve.
func (t *task) inputWatermark(wm int64) error {
	t.metrics.InputWatermark.Store(wm)
	return t.advance(0, wm)
}

// valveResult acts on a status change of the input valve and the advance it may bring.
func (t *task) valveResult(changed bool, wm int64, advanced bool) error {
	if advanced {
		if err := t.inputWatermark(wm); err != nil {
			return err
		}
	}
	if changed {
		return t.status(0, t.valve.outIdle)
	}
	return nil
}

// advance brings watermark wm to the input of link from and on through the chain: a keyed
// head fires its event-time timers first, a generator (watermark operator) drops it for its
// own, and what reaches the tail goes to every target.
func (t *task) advance(from int, wm int64) error {
	for j := from; j < len(t.chain); j++ {
		if g := t.gens[j]; g != nil && g.wm != nil {
			return nil
		}
		t.linkWM[j] = wm
		if j == 0 && t.timers != nil {
			if err := t.timers.fire(EventTime, wm); err != nil {
				return named(t.chain[0].name, err)
			}
		}
	}
	t.metrics.OutputWatermark.Store(wm)
	return t.out.broadcast(event.Event{Kind: event.KindWatermark, Watermark: wm})
}

// genStatus marks generator g idle or active and tells downstream.
func (t *task) genStatus(g *wmGen, idle bool) error {
	g.idle = idle
	return t.status(g.link+1, idle)
}

// status brings an idle or active status to link from: a generator downstream of it has
// its own, else the task's targets hear of a change.
func (t *task) status(from int, idle bool) error {
	for j := from; j < len(t.chain); j++ {
		if g := t.gens[j]; g != nil && g.wm != nil {
			return nil
		}
	}
	if t.statusIdle == idle {
		return nil
	}
	t.statusIdle = idle
	st := event.Active
	if idle {
		st = event.Idle
	}
	return t.out.broadcast(event.Event{Kind: event.KindWatermarkStatus, Status: st})
}
