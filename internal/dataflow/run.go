package dataflow

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// TaskIO is what the runtime provides to one subtask.
type TaskIO struct {
	Input   InputGate              // nil for source vertices
	Outputs map[int][]RecordWriter // per out-edge id: one writer per target subtask (nil where Targets excludes it)
	Stdout  io.Writer              // for print sinks without a path
	Metrics *VertexMetrics         // may be nil
	// Files opens the files of file sources and sinks, confined to what the job was
	// authorized for; nil: the task may open none.
	Files *JobFiles
	// Mailbox carries control to the task; nil: the task gets none (RunLocal).
	Mailbox *Mailbox
	Job     JobInfo // zero: the plan's name only
	// State creates the keyed state backends of the operators whose Shape says KeyedInput
	// (state.backend.type); nil: hashmap.Factory.
	State state.Factory
	// StateDir is where backends with local files (pebble) keep them: each operator subtask
	// gets its own directory below it, which the backend removes when it closes. Empty: the
	// system's temporary directory.
	StateDir string
	// StateIncremental is state.backend.incremental.
	StateIncremental bool
	Logger           *slog.Logger // nil: operators log nowhere
	// WatermarkInterval is pipeline.auto-watermark-interval: how often sources and watermark
	// operators emit watermarks and check for idleness; 0: DefaultAutoWatermarkInterval.
	WatermarkInterval time.Duration
	// Checkpoints makes the task take part in checkpoints and savepoints, and restore; nil:
	// it never snapshots, and a barrier or trigger reaching it fails it.
	Checkpoints *TaskCheckpointing
	// Credentials answers connectors' requests for the credentials of the services they reach
	// (package credentials); nil: the task holds none.
	Credentials Credentials
}

// InputGate delivers the elements of all input channels of a subtask: records, events
// (package event) and the end of each channel's partition.
type InputGate interface {
	// NextDelivery returns the next element of any channel, its Data valid until the next
	// call; elements of one channel come in the order they were sent. It returns
	// event.ErrWoken when wake became ready while no element was available (a nil wake never
	// does), and io.EOF once every channel has delivered its DeliverEnd.
	NextDelivery(ctx context.Context, wake <-chan struct{}) (event.Delivery, error)
	// Channels is the number of input channels; their indexes are 0..Channels()-1.
	Channels() int
	// Block holds back the elements of channel ch until Unblock (barrier alignment);
	// blocking a blocked channel does nothing. Called from the task's goroutine only.
	Block(ch int)
	// Unblock releases channel ch: its held elements come, in order, before anything it
	// sends later. Unblocking a channel that is not blocked does nothing.
	Unblock(ch int)
}

// RecordWriter sends encoded records and events to one target subtask. WriteRecord,
// WriteTimedRecord and WriteEvent must not keep b after they return; an event is delivered
// after every record written before it. Close ends the partition: the target sees it as the
// end of this channel.
type RecordWriter interface {
	WriteRecord(b []byte) error
	// WriteTimedRecord sends a record with event time: b is AppendTimedRecord's encoding
	// (a zigzag varint timestamp, then the record); the target gets it as
	// event.DeliverTimedRecord.
	WriteTimedRecord(b []byte) error
	WriteEvent(payload []byte) error
	Close() error
}

// VertexMetrics are the counters of one subtask, read by the runtime while it runs.
type VertexMetrics struct {
	ReadRecords, ReadBytes, WriteRecords, WriteBytes atomic.Int64
	// InputWatermark and OutputWatermark are Flink's currentInputWatermark and
	// currentOutputWatermark (ms): the watermark the task's input last advanced to and the
	// one it last sent downstream; math.MinInt64 (NoTimestamp) until the first (the task
	// sets them so when it starts).
	InputWatermark, OutputWatermark atomic.Int64
	// LateRecordsDropped is Flink's numLateRecordsDropped: records a window dropped because
	// they came later than its allowed lateness (and it has no late side output).
	LateRecordsDropped atomic.Int64
}

// RunSubtask runs one subtask of a vertex until its input ends (it then closes every writer
// and returns nil), ctx is cancelled (it returns ctx.Err() without closing writers cleanly and
// without committing file sinks) or an error occurs.
func (p *Plan) RunSubtask(ctx context.Context, vertex, subtask int, tio TaskIO) error {
	if err := p.Compile(); err != nil {
		return err
	}
	if vertex < 0 || vertex >= len(p.Vertices) {
		return fmt.Errorf("run subtask: no vertex %d in plan %q", vertex, p.Name)
	}
	v := p.Vertices[vertex]
	if subtask < 0 || subtask >= v.Parallelism {
		return fmt.Errorf("run subtask: vertex %q has parallelism %d, no subtask %d", v.Name, v.Parallelism, subtask)
	}
	m := tio.Metrics
	if m == nil {
		m = new(VertexMetrics)
	}
	out, err := p.newOutput(ctx, v, subtask, tio, m)
	if err != nil {
		return err
	}
	t, err := p.newTask(ctx, v, subtask, tio, out)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return t.run(ctx)
}

// output is the tail of a chain: it encodes each record once and writes it to every out edge.
type output struct {
	edges   []*edgeOutput // every out edge, side outputs' too
	main    []*edgeOutput // the main output's
	metrics *VertexMetrics
	buf     []byte
}

type edgeOutput struct {
	edge    *Edge
	writers []RecordWriter
	key     KeySelector // hash edges
	forward int         // forward edges: the one target
	next    int         // rebalance: next target
	keyBuf  []byte
	maxPar  int // key groups, for hash edges
}

func (p *Plan) newOutput(ctx context.Context, v *Vertex, subtask int, tio TaskIO, m *VertexMetrics) (*output, error) {
	o := &output{metrics: m}
	for _, id := range v.OutEdges {
		e := p.Edges[id]
		ws := tio.Outputs[id]
		n := p.Vertices[e.Target].Parallelism
		if len(ws) != n {
			return nil, fmt.Errorf("vertex %q: edge %d needs %d writers, got %d", v.Name, id, n, len(ws))
		}
		eo := &edgeOutput{edge: e, writers: ws, next: subtask % n, maxPar: p.MaxParallelism}
		for _, t := range p.Targets(id, subtask) {
			if ws[t] == nil {
				return nil, fmt.Errorf("vertex %q: edge %d has no writer for target subtask %d", v.Name, id, t)
			}
		}
		switch e.Partitioning {
		case PartitionHash:
			eo.key = e.partitioner.NewKeySelector(ctx)
		case PartitionForward:
			eo.forward = subtask
		}
		o.edges = append(o.edges, eo)
		if e.Tag == "" {
			o.main = append(o.main, eo)
		}
	}
	return o, nil
}

// Collect implements Output for the last operator of the chain. Its errors are marked as
// coming from downstream: a writer's failure is not the operator's.
func (o *output) Collect(e *Element) error {
	if len(o.main) == 0 {
		return nil
	}
	if err := o.writeTo(o.main, e.Record, e.Timestamp); err != nil {
		return &downstreamError{err}
	}
	return nil
}

func (o *output) writeTo(edges []*edgeOutput, r Record, ts int64) error {
	timed := ts != NoTimestamp
	if timed {
		o.buf = AppendTimedRecord(o.buf[:0], ts, r)
	} else {
		o.buf = AppendRecord(o.buf[:0], r)
	}
	for _, eo := range edges {
		var t int
		switch eo.edge.Partitioning {
		case PartitionHash:
			k, err := eo.key.Key(r)
			if err != nil {
				return err
			}
			eo.keyBuf = appendValue(eo.keyBuf[:0], k)
			t = keyTarget(eo.keyBuf, len(eo.writers), eo.maxPar)
		case PartitionForward:
			t = eo.forward
		default:
			t = eo.next
			eo.next++
			if eo.next == len(eo.writers) {
				eo.next = 0
			}
		}
		var err error
		if timed {
			err = eo.writers[t].WriteTimedRecord(o.buf)
		} else {
			err = eo.writers[t].WriteRecord(o.buf)
		}
		if err != nil {
			return fmt.Errorf("write to edge %d subtask %d: %w", eo.edge.ID, t, err)
		}
		o.metrics.WriteRecords.Add(1)
		o.metrics.WriteBytes.Add(int64(len(o.buf)))
	}
	return nil
}

// keyTarget is the subtask (of parallelism) owning the key group of the encoded key: every
// producer computes the same target for a key, and a key's group stays the same at any
// parallelism, so keyed state can later move between subtasks by whole key groups.
func keyTarget(key []byte, parallelism, maxParallelism int) int {
	return keygroup.Operator(keygroup.Of(keygroup.Hash(key), maxParallelism), parallelism, maxParallelism)
}

// endOfData tells every target that this subtask sends no more records.
func (o *output) endOfData() error {
	return o.broadcast(event.Event{Kind: event.KindEndOfData})
}

// broadcast sends an event to every target, after the records written before it.
func (o *output) broadcast(ev event.Event) error {
	payload := event.Append(nil, ev)
	for _, eo := range o.edges {
		for i, w := range eo.writers {
			if w == nil {
				continue
			}
			if err := w.WriteEvent(payload); err != nil {
				return fmt.Errorf("%v to edge %d subtask %d: %w", ev.Kind, eo.edge.ID, i, err)
			}
		}
	}
	return nil
}

func (o *output) finish() error {
	var errs []error
	for _, eo := range o.edges {
		for i, w := range eo.writers {
			if w == nil {
				continue
			}
			if err := w.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close edge %d subtask %d: %w", eo.edge.ID, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// StateWorkDir is the private directory of one operator subtask's state backend.
func (tio TaskIO) StateWorkDir(operator string, subtask int) string {
	dir := tio.StateDir
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%d-%d-%x", tio.Job.ID, tio.Job.Attempt, subtask, sha256.Sum224([]byte(operator))))
}
