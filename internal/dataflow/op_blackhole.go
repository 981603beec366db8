package dataflow

import "context"

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
func (blackhole) NewOperator() Operator { return blackholeSink{} }

// blackholeSink discards every element.
type blackholeSink struct{}

func (blackholeSink) Open(context.Context, *RuntimeContext) error { return nil }
func (blackholeSink) Process(int, *Element) error                 { return nil }
func (blackholeSink) Finish() error                               { return nil }
func (blackholeSink) Close() error                                { return nil }
