package dataflow

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// TypeFile is a source without input (it reads one file) and a sink with one (it writes a
// part file per subtask into a directory).
const TypeFile = "file"

func init() {
	Register(OperatorType{Name: TypeFile, New: func() Definition { return new(FileOptions) }})
}

// FileOptions are the options of a file source or sink.
type FileOptions struct {
	Path   string   `yaml:"path"`
	Format string   `yaml:"format"`                                                  // text (default), json or csv
	Fields []string `yaml:"fields" want:"a list of field names" elem:"a field name"` // source columns
	Header *bool    `yaml:"header"`                                                  // csv source: first line is a header

	sink   bool   // from Check: the operator has an input
	schema Schema // a source's, after Plan
}

// Check implements Definition: with an input the operator is a sink.
func (f *FileOptions) Check(op *OperatorSpec) (Shape, error) {
	sink := op.Input != ""
	f.sink = sink
	if !sink {
		if f.Path == "" {
			return Shape{}, op.errf("path", "missing required option")
		}
	} else {
		if f.Path == "" {
			return Shape{}, op.errf("path", "missing required option: the output directory")
		}
		if len(f.Fields) > 0 || f.Header != nil {
			return Shape{}, op.errf("fields", "only for file sources")
		}
	}
	if f.Format == "" {
		f.Format = "text"
	}
	if f.Format != "text" && f.Format != "json" && f.Format != "csv" {
		return Shape{}, op.errf("format", "unknown format %q: want text, json or csv", f.Format)
	}
	if !sink && f.Format == "json" && len(f.Fields) == 0 {
		return Shape{}, op.errf("fields", "missing required option: list the JSON keys to read")
	}
	if sink {
		return Shape{Inputs: 1, Sink: true}, nil
	}
	return Shape{Bounded: true}, nil
}

// Plan implements Definition. A csv source without fields takes them from the file's header
// line, read where the job runs; without it the schema is deferred (the JobManager never
// opens a job's data).
func (f *FileOptions) Plan(pc *PlanContext) (Schema, error) {
	o := pc.Op
	if o.Input != "" {
		return nil, nil
	}
	var schema Schema
	switch f.Format {
	case "text":
		if len(f.Fields) > 0 {
			return nil, o.errf("fields", "a text source has the single field line")
		}
		schema = Schema{{"line", KindString}}
	case "json":
		for _, name := range f.Fields {
			if err := checkFieldName(o, "fields", name); err != nil {
				return nil, err
			}
			schema = append(schema, Field{name, KindAny})
		}
	default:
		fields := f.Fields
		if len(fields) == 0 {
			hdr, err := pc.CSVHeader()
			if errors.Is(err, ErrSchemaDeferred) {
				return nil, err
			}
			if err != nil {
				return nil, o.errf("fields", "not given and the header of %s cannot be read (%v): list the columns in fields", f.Path, err)
			}
			fields = hdr
		}
		for _, name := range fields {
			if err := checkFieldName(o, "fields", name); err != nil {
				return nil, err
			}
			schema = append(schema, Field{name, KindString})
		}
	}
	f.schema = schema
	return schema, nil
}

// Access implements Definition: a source reads its file, a sink writes its directory.
func (f *FileOptions) Access(op *OperatorSpec) []Access {
	return []Access{{Scheme: "file", Target: f.Path, Write: op.Input != ""}}
}

// NewOperator implements Definition.
func (f *FileOptions) NewOperator() Operator {
	if !f.sink {
		return newFileSource(f)
	}
	return &fileSink{format: f.Format}
}

func parseCSVLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	return r.Read()
}

// fileSource divides a file into S = max-parallelism splits, line L (from 0) belonging to
// split L mod S, and reads the lines of the subtask's contiguous range of splits: the
// subtasks split one file without coordination, each line read once at any parallelism.
type fileSource struct {
	NoInput
	name         string
	path, format string         // path as the spec gives it, for messages
	fields       []string       // json keys
	header       bool           // skip line 0
	splits       int            // S
	own          keygroup.Range // the subtask's splits
	schema       Schema
	out          Output

	file   *os.File
	sc     *bufio.Scanner
	lineNo int
	rec    Record
	el     Element
}

// fileBatch is how many lines one Poll reads: the task checks for cancellation and mail
// between two batches.
const fileBatch = 256

func newFileSource(o *FileOptions) *fileSource {
	header := o.Format == "csv" && len(o.Fields) == 0
	if o.Header != nil {
		header = *o.Header
	}
	return &fileSource{path: o.Path, format: o.Format, fields: o.Fields, header: header, schema: o.schema}
}

func (f *fileSource) Open(_ context.Context, rc *RuntimeContext) error {
	f.name, f.out = rc.Operator, rc.Output
	f.splits, f.own = rc.maxParallelism(), rc.Splits()
	// Opened through the job's grants: the path the job was authorized for, no symlinks.
	file, err := rc.Files.OpenInput(f.name)
	if err != nil {
		return opErr(f.name, fmt.Errorf("open input: %w", err))
	}
	f.file = file
	f.sc = bufio.NewScanner(file)
	f.sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	f.rec = make(Record, len(f.schema))
	f.el.Record = f.rec
	return nil
}

// Poll implements Source: it reads up to fileBatch lines, emitting this subtask's.
func (f *fileSource) Poll(context.Context) (PollStatus, error) {
	for end := f.lineNo + fileBatch; f.lineNo < end; f.lineNo++ {
		if !f.sc.Scan() {
			if err := f.sc.Err(); err != nil {
				return PollEnd, fmt.Errorf("read %s: %w", f.path, err)
			}
			return PollEnd, nil
		}
		if !f.own.Contains(f.lineNo%f.splits) || (f.header && f.lineNo == 0) {
			continue
		}
		line := strings.TrimSuffix(f.sc.Text(), "\r")
		if err := f.parse(line, f.rec); err != nil {
			return PollEnd, fmt.Errorf("%s line %d: %w", f.path, f.lineNo+1, err)
		}
		if err := f.out.Collect(&f.el); err != nil {
			return PollEnd, err
		}
	}
	return PollMore, nil
}

// Available implements Source: a file is never idle, only read or ended.
func (f *fileSource) Available() <-chan struct{} { return nil }

func (f *fileSource) Finish() error { return nil }

func (f *fileSource) Close() error {
	if f.file == nil {
		return nil
	}
	err := f.file.Close()
	f.file = nil
	return err
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

// fileSink writes one part file per subtask. It writes to a hidden temporary file in the
// target directory and renames it when the input ends, so readers never see a partial file:
// on failure or cancellation the temporary file is removed.
//
// The directory is opened once through the job's grants (no symlinks, created if missing)
// and every file is created and renamed relative to it, so a part file cannot land outside
// the directory the job was authorized to write, whatever happens to its path meanwhile.
type fileSink struct {
	name, final, tmp, format string
	dir                      *fsguard.Dir
	schema                   Schema
	f                        *os.File
	w                        *bufio.Writer
	csv                      *csv.Writer
	buf                      []byte
	row                      []string
}

// Open creates the subtask's hidden part file in the output directory.
func (s *fileSink) Open(_ context.Context, rc *RuntimeContext) error {
	s.name, s.schema = rc.Operator, rc.in
	dir, err := rc.Files.OutputDir(s.name)
	if err != nil {
		return opErr(s.name, fmt.Errorf("open output directory: %w", err))
	}
	base := fmt.Sprintf("part-%s-%d", s.name, rc.Subtask)
	f, tmp, err := dir.CreateTemp("."+base+".", ".inprogress")
	if err != nil {
		dir.Close()
		return opErr(s.name, fmt.Errorf("create part file: %w", err))
	}
	s.dir, s.final, s.tmp, s.f, s.w = dir, base, tmp, f, bufio.NewWriterSize(f, 64*1024)
	if s.format == "csv" {
		s.csv = csv.NewWriter(s.w)
		s.row = make([]string, len(s.schema))
		// A header makes the file readable back by a csv source without listing fields.
		if err := s.csv.Write(s.schema.Names()); err != nil {
			return opErr(s.name, err) // the task closes the sink, removing the file
		}
	}
	return nil
}

func (s *fileSink) Process(_ int, e *Element) error {
	r := e.Record
	var err error
	switch s.format {
	case "csv":
		for i, v := range r {
			s.row[i] = v.Text()
		}
		err = s.csv.Write(s.row)
	case "json":
		s.buf = append(s.buf[:0], '{')
		for i, v := range r {
			if i > 0 {
				s.buf = append(s.buf, ',')
			}
			s.buf = appendJSON(s.buf, s.schema[i].Name)
			s.buf = append(s.buf, ':')
			s.buf = appendJSON(s.buf, v.native())
		}
		s.buf = append(s.buf, '}', '\n')
		_, err = s.w.Write(s.buf)
	default:
		s.buf = appendPrintLine(s.buf[:0], r)
		s.buf = append(s.buf, '\n')
		_, err = s.w.Write(s.buf)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", s.f.Name(), err)
	}
	return nil
}

func appendJSON(dst []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only NaN and infinities fail; JSON has no spelling for them.
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// Finish commits the part file: flushed, synced and renamed to its final name.
func (s *fileSink) Finish() error {
	if s.f == nil {
		return nil
	}
	if s.csv != nil {
		s.csv.Flush()
		if err := s.csv.Error(); err != nil {
			s.abort()
			return err
		}
	}
	err := s.w.Flush()
	if err == nil {
		err = s.f.Sync() // durable before it becomes visible
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.dir.Rename(s.tmp, s.final)
	}
	if err != nil {
		_ = s.dir.Remove(s.tmp)
		s.f = nil
		s.dir.Close()
		return fmt.Errorf("commit %s: %w", filepath.Join(s.dir.Path(), s.final), err)
	}
	s.f = nil
	return s.dir.Close()
}

// Close removes the part file unless Finish committed it.
func (s *fileSink) Close() error {
	s.abort()
	return nil
}

func (s *fileSink) abort() {
	if s.f == nil {
		return
	}
	s.f.Close()
	_ = s.dir.Remove(s.tmp)
	s.dir.Close()
	s.f = nil
}
