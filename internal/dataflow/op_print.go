package dataflow

import (
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
	return chained(func(rc *RuntimeContext, _ collector) (collector, error) {
		if p.Path != "" {
			return newFileSink(rc.Files, rc.Operator, "text", rc.Subtask, rc.in)
		}
		return &printSink{name: rc.Operator, w: rc.Stdout}, nil
	})
}

// printSink writes one line per record, control characters escaped (appendPrintLine). Each
// line is one Write call so lines of concurrent subtasks sharing a terminal do not interleave
// mid-line.
type printSink struct {
	name string
	w    io.Writer
	buf  []byte
}

func (p *printSink) collect(r Record) error {
	p.buf = appendPrintLine(p.buf[:0], r)
	p.buf = append(p.buf, '\n')
	if _, err := p.w.Write(p.buf); err != nil {
		return opErr(p.name, fmt.Errorf("print: %w", err))
	}
	return nil
}

func (p *printSink) finish() error { return nil }
func (p *printSink) abort()        {}
