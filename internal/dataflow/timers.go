package dataflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// TimeDomain says which clock a timer follows.
type TimeDomain uint8

const (
	// EventTime timers fire when the watermark at the operator's input reaches their time.
	EventTime TimeDomain = iota
	// ProcessingTime timers fire when the wall clock reaches their time.
	ProcessingTime
)

func (d TimeDomain) String() string {
	if d == EventTime {
		return "event time"
	}
	return "processing time"
}

// Timer is one timer that fired: OnTimer runs with its key current, so the keyed state the
// operator reads is that key's (Flink's KeyedProcessFunction.onTimer).
type Timer struct {
	Time      int64 // ms since the epoch
	Domain    TimeDomain
	Namespace []byte // as registered (a window's encoding); valid during OnTimer only
	Key       Value  // RuntimeContext.CurrentKey during OnTimer; valid during OnTimer only
}

// TimerHandler is implemented by keyed operators (Shape.KeyedInput) that register timers.
// OnTimer runs in the task goroutine, between elements, with the timer's key current; it may
// emit to the operator's Output, read and write keyed state and register timers. Event-time
// timers fire, in time order, when the watermark advances and before it goes downstream, so
// what OnTimer emits is never behind that watermark.
type TimerHandler interface {
	OnTimer(t Timer) error
}

// TimerService is RuntimeContext.Timers. Times are ms since the epoch. A timer is one per
// (key, namespace, time, domain): registering it again does nothing. Timers live in the
// operator's keyed state (internal state "_timers"), so they are checkpointed, restored and
// redistributed with their key groups. Registering needs a keyed operator implementing
// TimerHandler; the clocks are readable by any operator.
type TimerService interface {
	// CurrentProcessingTime is the wall clock.
	CurrentProcessingTime() int64
	// CurrentWatermark is the watermark at the operator's input; NoTimestamp before the first.
	CurrentWatermark() int64
	// RegisterEventTimeTimer fires OnTimer for the current key once the watermark reaches ts.
	RegisterEventTimeTimer(ts int64, ns []byte) error
	// RegisterProcessingTimeTimer fires OnTimer for the current key once the clock reaches ts.
	RegisterProcessingTimeTimer(ts int64, ns []byte) error
	DeleteEventTimeTimer(ts int64, ns []byte) error
	DeleteProcessingTimeTimer(ts int64, ns []byte) error
}

// timersState is the keyed state holding a keyed operator's timers: a map in namespace
// "e" (event time) or "p" (processing time), user key = big-endian time (sign bit flipped,
// so byte order is time order) followed by the timer's namespace, value empty.
const timersState = "_timers"

var domainNS = [2][]byte{EventTime: []byte("e"), ProcessingTime: []byte("p")}

// errNoTimers is what a non-keyed operator gets for registering a timer.
var errNoTimers = errors.New("timers are per key: only a keyed operator (reading from a key_by) that implements dataflow.TimerHandler registers timers")

// timerService is the TimerService of one operator of a task.
type timerService struct {
	t    *task
	link int // the operator's index in the chain

	// Keyed heads implementing TimerHandler only.
	handler TimerHandler
	b       state.Backend
	id      state.ID
	maxPar  int
	heaps   [2]timerHeap
	ukey    []byte
	keyBuf  []byte
	keyRec  Record
}

type timerEntry struct {
	time int64
	key  []byte // the encoded key (backend's current key)
	ukey []byte // user key in _timers: time ‖ namespace
}

// timerHeap is a min-heap of timers by time. It is typed rather than a container/heap,
// whose Push and Pop box every entry: a windowed operator registers and fires a timer for
// most records.
type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }

func (h *timerHeap) init() {
	for i := len(*h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *timerHeap) push(e timerEntry) {
	*h = append(*h, e)
	h.up(len(*h) - 1)
}

func (h *timerHeap) pop() timerEntry {
	old := *h
	n := len(old) - 1
	old[0], old[n] = old[n], old[0]
	e := old[n]
	old[n] = timerEntry{} // let the key bytes go
	*h = old[:n]
	h.down(0)
	return e
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if h[i].time <= h[j].time {
			return
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (h timerHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		j := l
		if r := l + 1; r < len(h) && h[r].time < h[l].time {
			j = r
		}
		if h[i].time <= h[j].time {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

func (s *timerService) CurrentProcessingTime() int64 { return time.Now().UnixMilli() }
func (s *timerService) CurrentWatermark() int64 {
	if s.t == nil {
		return NoTimestamp
	}
	return s.t.linkWM[s.link]
}

func (s *timerService) RegisterEventTimeTimer(ts int64, ns []byte) error {
	return s.register(EventTime, ts, ns)
}
func (s *timerService) RegisterProcessingTimeTimer(ts int64, ns []byte) error {
	return s.register(ProcessingTime, ts, ns)
}
func (s *timerService) DeleteEventTimeTimer(ts int64, ns []byte) error {
	return s.delete(EventTime, ts, ns)
}
func (s *timerService) DeleteProcessingTimeTimer(ts int64, ns []byte) error {
	return s.delete(ProcessingTime, ts, ns)
}

// timerKey is the user key of a timer in _timers.
func timerKey(dst []byte, ts int64, ns []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts)^1<<63)
	return append(dst, ns...)
}

// openTimers gives the keyed head its timers, restored from its keyed state.
func (s *timerService) open(h TimerHandler, b state.Backend, maxPar int) error {
	id, err := b.Register(timersState, state.KindMap)
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	s.handler, s.b, s.id, s.maxPar = h, b, id, maxPar
	var keys [][]byte
	if err := b.Keys(id, func(key []byte, _ int) error {
		keys = append(keys, append([]byte(nil), key...))
		return nil
	}); err != nil {
		return fmt.Errorf("restore timers: %w", err)
	}
	for _, k := range keys {
		b.SetCurrentKey(k, keygroup.Of(keygroup.Hash(k), maxPar))
		for d := range domainNS {
			err := b.Iterate(id, domainNS[d], func(uk, _ []byte) error {
				if len(uk) < 8 {
					return fmt.Errorf("timer of %d bytes, want at least 8", len(uk))
				}
				ts := int64(binary.BigEndian.Uint64(uk) ^ 1<<63)
				s.heaps[d] = append(s.heaps[d], timerEntry{time: ts, key: k, ukey: append([]byte(nil), uk...)})
				return nil
			})
			if err != nil {
				return fmt.Errorf("restore timers: %w", err)
			}
		}
	}
	for d := range s.heaps {
		s.heaps[d].init()
	}
	if len(s.heaps[ProcessingTime]) > 0 {
		s.t.wakeAt(s.heaps[ProcessingTime][0].time)
	}
	return nil
}

func (s *timerService) register(d TimeDomain, ts int64, ns []byte) error {
	if s.b == nil {
		return errNoTimers
	}
	key := s.b.CurrentKey()
	if key == nil {
		return errors.New("register timer: no current key (register timers from Process or OnTimer)")
	}
	s.ukey = timerKey(s.ukey[:0], ts, ns)
	if _, ok, err := s.b.Get(s.id, domainNS[d], s.ukey); err != nil || ok {
		return err
	}
	if err := s.b.Put(s.id, domainNS[d], s.ukey, nil); err != nil {
		return err
	}
	// One allocation for both copies.
	buf := make([]byte, 0, len(key)+len(s.ukey))
	buf = append(append(buf, key...), s.ukey...)
	s.heaps[d].push(timerEntry{time: ts, key: buf[:len(key):len(key)], ukey: buf[len(key):]})
	if d == ProcessingTime {
		s.t.wakeAt(ts)
	}
	return nil
}

// delete removes a timer from state; its heap entry is dropped when it comes up.
func (s *timerService) delete(d TimeDomain, ts int64, ns []byte) error {
	if s.b == nil {
		return errNoTimers
	}
	s.ukey = timerKey(s.ukey[:0], ts, ns)
	if _, ok, err := s.b.Get(s.id, domainNS[d], s.ukey); err != nil || !ok {
		return err
	}
	return s.b.Delete(s.id, domainNS[d], s.ukey)
}

// fire runs the timers of domain d due at upTo, earliest first, including those OnTimer
// registers at or before upTo.
func (s *timerService) fire(d TimeDomain, upTo int64) error {
	if s.b == nil {
		return nil
	}
	h := &s.heaps[d]
	for h.Len() > 0 && (*h)[0].time <= upTo {
		e := h.pop()
		s.b.SetCurrentKey(e.key, keygroup.Of(keygroup.Hash(e.key), s.maxPar))
		if _, ok, err := s.b.Get(s.id, domainNS[d], e.ukey); err != nil {
			return err
		} else if !ok {
			continue // deleted, or a duplicate entry that fired already
		}
		if err := s.b.Delete(s.id, domainNS[d], e.ukey); err != nil {
			return err
		}
		s.keyBuf = append(binary.AppendUvarint(s.keyBuf[:0], 1), e.key...)
		if err := DecodeRecord(s.keyBuf, &s.keyRec); err != nil {
			return fmt.Errorf("timer key: %w", err)
		}
		s.t.keyRC.key = s.keyRec[0]
		if err := s.handler.OnTimer(Timer{Time: e.time, Domain: d, Namespace: e.ukey[8:], Key: s.keyRec[0]}); err != nil {
			return err
		}
	}
	return nil
}

// nextProcessing is the time of the earliest processing-time timer.
func (s *timerService) nextProcessing() (int64, bool) {
	if s.b == nil || len(s.heaps[ProcessingTime]) == 0 {
		return 0, false
	}
	return s.heaps[ProcessingTime][0].time, true
}
