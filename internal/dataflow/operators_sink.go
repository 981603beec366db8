package dataflow

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
)

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

type blackholeSink struct{}

func (blackholeSink) collect(Record) error { return nil }
func (blackholeSink) finish() error        { return nil }
func (blackholeSink) abort()               {}

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
