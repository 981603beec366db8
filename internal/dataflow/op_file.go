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
		return sourced(func(rc *RuntimeContext) source {
			return newFileSource(rc.Operator, f, rc.Subtask, rc.Parallelism, rc.Files)
		})
	}
	return chained(func(rc *RuntimeContext, _ collector) (collector, error) {
		return newFileSink(rc.Files, rc.Operator, f.Format, rc.Subtask, rc.in)
	})
}

func parseCSVLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	return r.Read()
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

func newFileSource(name string, o *FileOptions, subtask, par int, files *JobFiles) *fileSource {
	header := o.Format == "csv" && len(o.Fields) == 0
	if o.Header != nil {
		header = *o.Header
	}
	return &fileSource{name: name, path: o.Path, format: o.Format, fields: o.Fields, header: header,
		subtask: subtask, par: par, schema: o.schema, files: files}
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

func newFileSink(files *JobFiles, name, format string, subtask int, schema Schema) (*fileSink, error) {
	dir, err := files.OutputDir(name)
	if err != nil {
		return nil, opErr(name, fmt.Errorf("open output directory: %w", err))
	}
	base := fmt.Sprintf("part-%s-%d", name, subtask)
	f, tmp, err := dir.CreateTemp("."+base+".", ".inprogress")
	if err != nil {
		dir.Close()
		return nil, opErr(name, fmt.Errorf("create part file: %w", err))
	}
	s := &fileSink{name: name, dir: dir, final: base, tmp: tmp, format: format, schema: schema,
		f: f, w: bufio.NewWriterSize(f, 64*1024)}
	if format == "csv" {
		s.csv = csv.NewWriter(s.w)
		s.row = make([]string, len(schema))
		// A header makes the file readable back by a csv source without listing fields.
		if err := s.csv.Write(schema.Names()); err != nil {
			s.abort()
			return nil, opErr(name, err)
		}
	}
	return s, nil
}

func (s *fileSink) collect(r Record) error {
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
		return opErr(s.name, fmt.Errorf("write %s: %w", s.f.Name(), err))
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

func (s *fileSink) finish() error {
	if s.f == nil {
		return nil
	}
	if s.csv != nil {
		s.csv.Flush()
		if err := s.csv.Error(); err != nil {
			s.abort()
			return opErr(s.name, err)
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
		return opErr(s.name, fmt.Errorf("commit %s: %w", filepath.Join(s.dir.Path(), s.final), err))
	}
	s.f = nil
	return s.dir.Close()
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
