package dataflow

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

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

// compileFileSource sets the schema of a file source. A csv source without fields takes them
// from the file's header line, read by opts.CSVHeader where the job runs; without it the
// schema is deferred (the JobManager never opens a job's data).
func (oi *opInfo) compileFileSource(opts PlanOptions) error {
	o := oi.spec
	switch o.Format {
	case "text":
		if len(o.Fields) > 0 {
			return o.errf("fields", "a text source has the single field line")
		}
		oi.schema = Schema{{"line", KindString}}
		return nil
	case "json":
		for _, f := range o.Fields {
			if err := checkFieldName(o, "fields", f); err != nil {
				return err
			}
			oi.schema = append(oi.schema, Field{f, KindAny})
		}
		return nil
	}
	fields := o.Fields
	if len(fields) == 0 {
		if opts.CSVHeader == nil {
			oi.deferred = true
			return nil
		}
		hdr, err := opts.CSVHeader(o)
		if err != nil {
			return o.errf("fields", "not given and the header of %s cannot be read (%v): list the columns in fields", o.Path, err)
		}
		fields = hdr
	}
	for _, f := range fields {
		if err := checkFieldName(o, "fields", f); err != nil {
			return err
		}
		oi.schema = append(oi.schema, Field{f, KindString})
	}
	return nil
}

func parseCSVLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	return r.Read()
}

// source produces the records of a source vertex's subtask.
type source interface {
	run(ctx context.Context, out collector) error
}

// generatorSource emits ids subtask, subtask+p, ... so the subtasks together emit each id once.
type generatorSource struct {
	count, keys  int64
	rate         float64 // per subtask
	subtask, par int64
	keyNames     []string // precomputed "key-N" to avoid formatting per record
}

func newGenerator(o *OperatorSpec, subtask, par int) *generatorSource {
	g := &generatorSource{count: o.Count, keys: o.Keys, subtask: int64(subtask), par: int64(par)}
	if o.Rate > 0 {
		g.rate = o.Rate / float64(par)
	}
	if g.keys <= 1<<16 {
		g.keyNames = make([]string, g.keys)
		for i := range g.keyNames {
			g.keyNames[i] = "key-" + strconv.Itoa(i)
		}
	}
	return g
}

func (g *generatorSource) run(ctx context.Context, out collector) error {
	rec := make(Record, 3)
	start := time.Now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var n int64
	for id := g.subtask; g.count == 0 || id < g.count; id += g.par {
		if n&255 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if g.rate > 0 {
			// Pace against the start time rather than sleeping per record, so timer slack
			// does not accumulate; sleeping only when 2 ms ahead keeps timer calls rare.
			due := start.Add(time.Duration(float64(n) / g.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 2*time.Millisecond {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		k := id % g.keys
		var key string
		if g.keyNames != nil {
			key = g.keyNames[k]
		} else {
			key = "key-" + strconv.FormatInt(k, 10)
		}
		rec[0], rec[1], rec[2] = Int(id), String(key), Int(id)
		if err := out.collect(rec); err != nil {
			return err
		}
		n++
		if id > math.MaxInt64-g.par {
			break
		}
	}
	return out.finish()
}

// fileSource reads lines lineNo % p == subtask, so p subtasks split one file without
// coordination.
type fileSource struct {
	name         string
	path, format string   // path as the spec gives it, for messages
	fields       []string // json keys
	header       bool     // skip line 0
	subtask, par int
	schema       Schema
	files        *JobFiles
}

func newFileSource(oi *opInfo, subtask, par int, files *JobFiles) *fileSource {
	o := oi.spec
	header := o.Format == "csv" && len(o.Fields) == 0
	if o.Header != nil {
		header = *o.Header
	}
	return &fileSource{name: o.Name, path: o.Path, format: o.Format, fields: o.Fields, header: header,
		subtask: subtask, par: par, schema: oi.schema, files: files}
}

func (f *fileSource) run(ctx context.Context, out collector) error {
	// Opened through the job's grants: the path the job was authorized for, no symlinks.
	file, err := f.files.OpenInput(f.name)
	if err != nil {
		return fmt.Errorf("operator %q: open input: %w", f.name, err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	rec := make(Record, len(f.schema))
	for lineNo := 0; sc.Scan(); lineNo++ {
		if lineNo&255 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if lineNo%f.par != f.subtask || (f.header && lineNo == 0) {
			continue
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if err := f.parse(line, rec); err != nil {
			return fmt.Errorf("operator %q: %s line %d: %w", f.name, f.path, lineNo+1, err)
		}
		if err := out.collect(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("operator %q: read %s: %w", f.name, f.path, err)
	}
	return out.finish()
}

func (f *fileSource) parse(line string, rec Record) error {
	switch f.format {
	case "text":
		rec[0] = String(line)
	case "csv":
		cols, err := parseCSVLine(line)
		if err != nil {
			return err
		}
		for i := range rec {
			if i < len(cols) {
				rec[i] = String(cols[i])
			} else {
				rec[i] = Null()
			}
		}
	case "json":
		if strings.TrimSpace(line) == "" {
			for i := range rec {
				rec[i] = Null()
			}
			return nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			return fmt.Errorf("want one JSON object per line: %w", err)
		}
		for i, name := range f.fields {
			rec[i] = jsonValue(obj[name])
		}
	}
	return nil
}

// jsonValue converts a JSON value to a record value; integral numbers become ints, nested
// objects and arrays stay as their JSON text.
func jsonValue(raw json.RawMessage) Value {
	if len(raw) == 0 {
		return Null()
	}
	var v any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return String(string(raw))
	}
	switch x := v.(type) {
	case nil:
		return Null()
	case bool:
		return Bool(x)
	case string:
		return String(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return Int(i)
		}
		f, _ := x.Float64()
		return Float(f)
	}
	return String(string(raw))
}

// socketSource connects to host:port and reads text lines until the peer closes.
type socketSource struct {
	name, addr string
}

func (s *socketSource) run(ctx context.Context, out collector) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("operator %q: connect %s: %w", s.name, s.addr, err)
	}
	// Closing the connection is the only way to interrupt a blocked read on cancel.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	rec := make(Record, 1)
	for sc.Scan() {
		rec[0] = String(strings.TrimSuffix(sc.Text(), "\r"))
		if err := out.collect(rec); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("operator %q: read %s: %w", s.name, s.addr, err)
	}
	return out.finish()
}
