package dataflow

// TypeBlackhole discards its input: a sink for benchmarks.
const TypeBlackhole = "blackhole"

func init() {
	Register(OperatorType{Name: TypeBlackhole, New: func() Definition { return blackhole{} }})
}

// blackhole has no options.
type blackhole struct{}

// Check implements Definition.
func (blackhole) Check(*OperatorSpec) (Shape, error) { return Shape{Inputs: 1, Sink: true}, nil }

// Plan implements Definition: a sink has no output.
func (blackhole) Plan(*PlanContext) (Schema, error) { return nil, nil }

// Access implements Definition.
func (blackhole) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (blackhole) NewOperator() Operator {
	return chained(func(*RuntimeContext, collector) (collector, error) { return blackholeSink{}, nil })
}

type blackholeSink struct{}

func (blackholeSink) collect(Record) error { return nil }
func (blackholeSink) finish() error        { return nil }
func (blackholeSink) abort()               {}
