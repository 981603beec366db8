package dataflow

import (
	"context"
	"fmt"
	"io"
)

// TypePrint writes records as text lines: to the task's standard output, or with a path to a
// part file per subtask in that directory.
const TypePrint = "print"

func init() {
	Register(OperatorType{Name: TypePrint, New: func() Definition { return new(PrintOptions) }})
}

// PrintOptions are the options of a print sink.
type PrintOptions struct {
	Path string `yaml:"path"` // empty: standard output
}

// Check implements Definition.
func (p *PrintOptions) Check(*OperatorSpec) (Shape, error) { return Shape{Inputs: 1, Sink: true}, nil }

// Plan implements Definition: a sink has no output.
func (p *PrintOptions) Plan(*PlanContext) (Schema, error) { return nil, nil }

// Access implements Definition.
func (p *PrintOptions) Access(*OperatorSpec) []Access {
	if p.Path == "" {
		return nil
	}
	return []Access{{Scheme: "file", Target: p.Path, Write: true}}
}

// NewOperator implements Definition.
func (p *PrintOptions) NewOperator() Operator {
	if p.Path != "" {
		return &fileSink{format: "text"}
	}
	return &printSink{}
}

// printSink writes one line per record, control characters escaped (appendPrintLine). Each
// line is one Write call so lines of concurrent subtasks sharing a terminal do not interleave
// mid-line.
type printSink struct {
	w   io.Writer
	buf []byte
}

func (p *printSink) Open(_ context.Context, rc *RuntimeContext) error {
	p.w = rc.Stdout
	return nil
}

func (p *printSink) Process(_ int, e *Element) error {
	p.buf = appendPrintLine(p.buf[:0], e.Record)
	p.buf = append(p.buf, '\n')
	if _, err := p.w.Write(p.buf); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	return nil
}

func (p *printSink) Finish() error { return nil }
func (p *printSink) Close() error  { return nil }
