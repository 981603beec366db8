package dataflow

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Operator is one running operator of a subtask, as Definition.NewOperator returns it. Every
// method is called from the subtask's goroutine: Open once, Process per record of its input,
// Finish once when the input has ended, and Close exactly once, after Finish on success or
// alone after a failure or cancellation.
//
// The built-in types return adapters around the runtime's collectors and sources, which the
// runtime chains directly; an operator registered outside this package implements the
// methods itself (see registry_ext_test.go).
type Operator interface {
	Open(ctx context.Context, rc *RuntimeContext) error
	// Process handles one element of input (0 for one-input operators). The element's
	// record is valid only during the call.
	Process(input int, e *Element) error
	Finish() error
	Close() error
}

// Element is what flows between operators. An operator that emits a new record copies the
// element and replaces the record (o := *e; o.Record = r), so fields it does not know about
// travel on.
type Element struct {
	Record Record
}

// Output is where an operator emits. The record is not kept after Collect returns.
type Output interface {
	Collect(e *Element) error
}

// RuntimeContext is what an operator is opened with.
type RuntimeContext struct {
	Operator    string
	Subtask     int
	Parallelism int
	Output      Output
	Stdout      io.Writer // for operators that print; never nil
	Files       *JobFiles // the job's authorized files; nil: the task may open none

	ctx   context.Context
	in    Schema      // the input's schema; nil for a source
	inKey KeySelector // the input's key, for operators with a keyed input
	next  collector   // the rest of the chain, for built-in adapters
}

// collector receives the records of one operator's input, in a chain of operators that runs in
// one goroutine. A collector must not keep the Record slice after collect returns, and must
// Clone any value it keeps: values may alias the decode buffer.
type collector interface {
	collect(r Record) error
	// finish is called once when the input has ended; it flushes state and finishes downstream.
	finish() error
	// abort releases resources after a failure or cancellation without committing anything.
	abort()
}

// source produces the records of a source vertex's subtask.
type source interface {
	run(ctx context.Context, out collector) error
}

// opErr names the operator in an error raised while processing a record.
func opErr(name string, err error) error { return fmt.Errorf("operator %q: %w", name, err) }

// chainOperator adapts a built-in operator to Operator: Open links its collector (or source)
// in front of the rest of the chain, which the runtime then drives directly, one call per
// record and operator as before the registry.
type chainOperator struct {
	link    func(rc *RuntimeContext, next collector) (collector, error)
	linkSrc func(rc *RuntimeContext) source
	c       collector
	src     source
	done    bool
}

// chained returns the adapter of a built-in operator with input.
func chained(link func(rc *RuntimeContext, next collector) (collector, error)) Operator {
	return &chainOperator{link: link}
}

// sourced returns the adapter of a built-in source.
func sourced(link func(rc *RuntimeContext) source) Operator {
	return &chainOperator{linkSrc: link}
}

func (c *chainOperator) Open(ctx context.Context, rc *RuntimeContext) error {
	next := rc.next
	if next == nil {
		next = outputCollector{rc.Output}
	}
	if c.linkSrc != nil {
		c.src = c.linkSrc(rc)
		c.c = next
		return nil
	}
	var err error
	c.c, err = c.link(rc, next)
	return err
}

func (c *chainOperator) Process(_ int, e *Element) error {
	if c.src != nil {
		return errors.New("a source takes no input")
	}
	return c.c.collect(e.Record)
}

func (c *chainOperator) Finish() error {
	c.done = true
	return c.c.finish()
}

func (c *chainOperator) Close() error {
	if !c.done && c.c != nil {
		c.done = true
		c.c.abort()
	}
	return nil
}

// outputCollector ends a built-in operator's chain at an Output: what follows is another
// operator's business, so finish and abort stop here.
type outputCollector struct{ out Output }

func (o outputCollector) collect(r Record) error { return o.out.Collect(&Element{Record: r}) }
func (outputCollector) finish() error            { return nil }
func (outputCollector) abort()                   {}

// operatorCollector runs a registered Operator in a collector chain.
type operatorCollector struct {
	name string
	op   Operator
	el   Element
	next collector
}

func (o *operatorCollector) collect(r Record) error {
	o.el.Record = r
	err := o.op.Process(0, &o.el)
	o.el.Record = nil
	return o.named(err)
}

// named names the operator in its own errors; an error from further down the chain, which it
// passed on, names its operator already.
func (o *operatorCollector) named(err error) error {
	if err == nil {
		return nil
	}
	var d *downstreamError
	if errors.As(err, &d) {
		return d.err
	}
	return opErr(o.name, err)
}

func (o *operatorCollector) finish() error {
	if err := o.op.Finish(); err != nil {
		o.abort()
		return o.named(err)
	}
	if err := o.op.Close(); err != nil {
		o.next.abort()
		return opErr(o.name, fmt.Errorf("close: %w", err))
	}
	return o.next.finish()
}

func (o *operatorCollector) abort() {
	_ = o.op.Close()
	o.next.abort()
}

// collectorOutput is the Output of a registered operator: the rest of the chain.
type collectorOutput struct{ next collector }

func (c collectorOutput) Collect(e *Element) error {
	if err := c.next.collect(e.Record); err != nil {
		return &downstreamError{err}
	}
	return nil
}

// downstreamError marks an error of the chain after a registered operator as it passes
// through that operator's Process.
type downstreamError struct{ err error }

func (d *downstreamError) Error() string { return d.err.Error() }
func (d *downstreamError) Unwrap() error { return d.err }
