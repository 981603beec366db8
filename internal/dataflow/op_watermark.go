package dataflow

import "context"

// TypeWatermark assigns event time in the middle of a job: its `timestamp:` option takes
// each record's timestamp from a field (or ingestion time), and its `watermark:` option
// emits bounded-out-of-orderness watermarks in place of those of its input, which it drops
// (Flink's assignTimestampsAndWatermarks). Without `timestamp:` the records keep the
// timestamps they came with.
const TypeWatermark = "watermark"

func init() {
	Register(OperatorType{Name: TypeWatermark, New: func() Definition { return new(WatermarkOptions) }})
}

// WatermarkOptions are the options of a watermark operator: only the common event-time
// options `timestamp:` and `watermark:` (OperatorSpec.EventTime).
type WatermarkOptions struct{}

func (*WatermarkOptions) eventTimeOperator() {}

var _ EventTimeOperator = (*WatermarkOptions)(nil)

// Check implements Definition.
func (w *WatermarkOptions) Check(op *OperatorSpec) (Shape, error) {
	if op.EventTime == nil || op.EventTime.Watermark == nil {
		return Shape{}, op.errf("watermark", "missing required option: {max-out-of-orderness: DURATION, idle-timeout: DURATION}")
	}
	return Shape{Inputs: 1}, nil
}

// Plan implements Definition: records pass unchanged.
func (w *WatermarkOptions) Plan(pc *PlanContext) (Schema, error) { return pc.Inputs[0], nil }

// Access implements Definition.
func (w *WatermarkOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (w *WatermarkOptions) NewOperator() Operator { return &watermarkOp{} }

// watermarkOp passes records on; the task stamps them behind it and generates its
// watermarks (task.go, eventtime.go).
type watermarkOp struct{ out Output }

func (w *watermarkOp) Open(_ context.Context, rc *RuntimeContext) error {
	w.out = rc.Output
	return nil
}
func (w *watermarkOp) Process(_ int, e *Element) error { return w.out.Collect(e) }
func (w *watermarkOp) Finish() error                   { return nil }
func (w *watermarkOp) Close() error                    { return nil }
