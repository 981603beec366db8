package dataflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
	"github.com/sluice-dev/sluice/internal/state"
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
	// Optional lets a sink's path be empty, and then discards the records as a blackhole
	// does: a spec writes its results only when run with an output directory (`path:
	// ${output}`, `--param output=DIR`), and is measured without one.
	Optional bool `yaml:"optional"`

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
		if f.Optional {
			return Shape{}, op.errf("optional", "only for file sinks: a source needs its path")
		}
	} else {
		if f.Path == "" && !f.Optional {
			return Shape{}, op.errf("path", "missing required option: the output directory (or optional: true to discard the records when it is empty)")
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
		schema = Schema{{Name: "line", Kind: KindString}}
	case "json":
		s, err := JSONSchema(o, f.Fields)
		if err != nil {
			return nil, err
		}
		schema = s
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
			if err := CheckFieldName(o, "fields", name); err != nil {
				return nil, err
			}
			schema = append(schema, Field{Name: name, Kind: KindString})
		}
	}
	f.schema = schema
	return schema, nil
}

// Access implements Definition: a source reads its file, a sink writes its directory.
func (f *FileOptions) Access(op *OperatorSpec) []Access {
	if f.Path == "" {
		return nil // an optional sink without a path writes nothing
	}
	return []Access{{Scheme: "file", Target: f.Path, Write: op.Input != ""}}
}

// NewOperator implements Definition.
func (f *FileOptions) NewOperator() Operator {
	if !f.sink {
		return newFileSource(f)
	}
	if f.Path == "" {
		return blackholeSink{} // optional: true and no path
	}
	return &fileSink{format: f.Format}
}

func parseCSVLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	return r.Read()
}

// fileSource divides a file into S = max-parallelism splits, line L (from 0) belonging to
// split L mod S, and reads the lines of its splits: the subtasks split one file without
// coordination, each line read once at any parallelism. Its position is kept per split in a
// split list state, (split, S, line, byte offset): the split's lines below line were read,
// and line starts at offset. A restored source seeks to the lowest offset among its splits
// and skips, per split, the lines below that split's position.
type fileSource struct {
	NoInput
	name         string
	path, format string // path as the spec gives it, for messages
	header       bool   // skip line 0
	splits       int    // S
	schema       Schema
	out          Output
	list         *state.ListState

	// pos[k] is, for a split read by this subtask, the first line of it not yet emitted
	// and that line's offset; line -1: not this subtask's split.
	pos  []filePos
	mine []int // the splits read, in split order

	file   *os.File
	sc     *bufio.Scanner
	lineNo int
	offset int64 // byte offset of line lineNo
	read   int64 // bytes the scanner consumed so far, from the first offset
	rec    Record
	el     Element
	// check, when set, vets each parsed record (the nexmark source reading a file).
	check func(Record) error
	// stamp, when set, is the event time of a record the source read (a nexmark file).
	stamp func(Record) int64
}

type filePos struct {
	line   int64
	offset int64
}

// fileSplits is the name of the file source's split list state.
const fileSplits = "splits"

// fileBatch is how many lines one Poll reads: the task checks for cancellation and mail
// between two batches.
const fileBatch = 256

func newFileSource(o *FileOptions) *fileSource {
	header := o.Format == "csv" && len(o.Fields) == 0
	if o.Header != nil {
		header = *o.Header
	}
	return &fileSource{path: o.Path, format: o.Format, header: header, schema: o.schema}
}

func (f *fileSource) Open(_ context.Context, rc *RuntimeContext) error {
	f.name, f.out = rc.Operator, rc.Output
	f.splits = rc.maxParallelism()
	list, err := rc.ListState(fileSplits, state.Split)
	if err != nil {
		return err
	}
	f.list = list
	f.pos = make([]filePos, f.splits)
	for k := range f.pos {
		f.pos[k].line = -1
	}
	start := filePos{}
	if rc.restoredList(fileSplits) {
		start = filePos{line: math.MaxInt64}
		for _, e := range list.Entries() {
			sp, err := decodeSplitPosition(e, int64(f.splits), 2)
			if err != nil {
				return opErr(f.name, fmt.Errorf("restore from checkpoint %d: %w", rc.Restored, err))
			}
			p := filePos{line: sp.pos[0], offset: sp.pos[1]}
			if p.line < 0 || p.offset < 0 || f.pos[sp.split].line >= 0 {
				return opErr(f.name, fmt.Errorf("restore from checkpoint %d: split %d: bad or repeated position", rc.Restored, sp.split))
			}
			f.pos[sp.split] = p
			if p.line < start.line {
				start = p
			}
		}
		if start.line == math.MaxInt64 {
			start = filePos{}
		}
	} else {
		own := rc.Splits()
		for k := own.First; k <= own.Last; k++ {
			f.pos[k] = filePos{}
		}
	}
	for k, p := range f.pos {
		if p.line >= 0 {
			f.mine = append(f.mine, k)
		}
	}
	// Opened through the job's grants: the path the job was authorized for, no symlinks.
	file, err := rc.Files.OpenInput(f.name)
	if err != nil {
		return opErr(f.name, fmt.Errorf("open input: %w", err))
	}
	f.file = file
	if start.offset > 0 {
		if _, err := file.Seek(start.offset, io.SeekStart); err != nil {
			return opErr(f.name, fmt.Errorf("seek %s to offset %d: %w", f.path, start.offset, err))
		}
	}
	f.lineNo, f.offset = int(start.line), start.offset
	f.sc = bufio.NewScanner(file)
	f.sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	f.read = start.offset
	f.sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		adv, tok, err := bufio.ScanLines(data, atEOF)
		f.read += int64(adv)
		return adv, tok, err
	})
	f.rec = make(Record, len(f.schema))
	f.el = Element{Record: f.rec, Timestamp: NoTimestamp}
	return nil
}

// Poll implements Source: it reads up to fileBatch lines, emitting this subtask's.
func (f *fileSource) Poll(context.Context) (PollStatus, error) {
	if len(f.mine) == 0 {
		return PollEnd, nil
	}
	for end := f.lineNo + fileBatch; f.lineNo < end; f.lineNo++ {
		if !f.sc.Scan() {
			if err := f.sc.Err(); err != nil {
				return PollEnd, fmt.Errorf("read %s: %w", f.path, err)
			}
			return PollEnd, nil
		}
		line := f.lineNo
		f.offset = f.read // the next line starts where the scanner stopped
		if p := f.pos[line%f.splits]; p.line < 0 || int64(line) < p.line || (f.header && line == 0) {
			continue
		}
		text := strings.TrimSuffix(f.sc.Text(), "\r")
		if err := f.parse(text, f.rec); err != nil {
			return PollEnd, fmt.Errorf("%s line %d: %w", f.path, line+1, err)
		}
		if f.check != nil {
			if err := f.check(f.rec); err != nil {
				return PollEnd, fmt.Errorf("%s line %d: %w", f.path, line+1, err)
			}
		}
		if f.stamp != nil {
			f.el.Timestamp = f.stamp(f.rec)
		}
		if err := f.out.Collect(&f.el); err != nil {
			return PollEnd, err
		}
	}
	return PollMore, nil
}

// SnapshotState implements Snapshotter: each split's position is the next line to read, or
// its restored position while reading has not reached it yet.
func (f *fileSource) SnapshotState(CheckpointInfo) (func(context.Context) error, error) {
	entries := make([][]byte, len(f.mine))
	for i, k := range f.mine {
		p := f.pos[k]
		if int64(f.lineNo) > p.line {
			p = filePos{line: int64(f.lineNo), offset: f.offset}
		}
		entries[i] = appendSplitPosition(nil, int64(k), int64(f.splits), p.line, p.offset)
	}
	f.list.Update(entries)
	return nil, nil
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
		return ParseJSONObject([]byte(line), f.schema, rec)
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

// fileSink writes part files into a directory through a two-phase commit (twophase.go):
// each transaction is one hidden in-progress file, prepared (flushed, then fsynced) at a
// barrier and renamed to its final name when the checkpoint completes, so readers never see
// a partial file nor one of a checkpoint that did not complete. Without checkpointing the
// single transaction is committed at the end of input as part-<op>-<subtask>, as before;
// on failure or cancellation the in-progress file is removed.
//
// The directory is opened once through the job's grants (no symlinks, created if missing)
// and every file is created, renamed and removed relative to it, by plain names only, so a
// part file cannot land outside the directory the job was authorized to write, whatever
// happens to its path meanwhile or whatever a restored state names.
type fileSink struct {
	name, format string
	subtask      int
	job8         string // the job id's first 8 characters, in the names of its files
	attempt      int
	checkpointed bool // hidden names carry job and attempt: a restore can tell them apart
	dir          *fsguard.Dir
	schema       Schema
	tpc          *TwoPhaseCommit[*partFile]
	seq          int
	buf          []byte
	row          []string
	log          *slog.Logger
}

// partFile is one transaction of the file sink.
type partFile struct {
	hidden string // the in-progress file's name in the directory
	final  string // its committed name, set by Prepare
	remove bool   // prepared empty at a checkpoint: the commit removes it instead

	// While written (not restored).
	f       *os.File
	w       *bufio.Writer
	csv     *csv.Writer
	records int64
}

// Open opens the output directory, commits what a restored checkpoint holds and begins the
// first part file.
func (s *fileSink) Open(_ context.Context, rc *RuntimeContext) error {
	s.name, s.schema, s.subtask, s.log = rc.Operator, rc.in, rc.Subtask, rc.Logger
	s.job8, s.attempt = rc.Job.ID, rc.Job.Attempt
	if len(s.job8) > 8 {
		s.job8 = s.job8[:8]
	}
	if s.job8 == "" {
		s.job8 = "local"
	}
	s.checkpointed = rc.snaps
	dir, err := rc.Files.OutputDir(s.name)
	if err != nil {
		return opErr(s.name, fmt.Errorf("open output directory: %w", err))
	}
	s.dir = dir
	if s.format == "csv" {
		s.row = make([]string, len(s.schema))
	}
	tpc, err := NewTwoPhaseCommit[*partFile](rc, s)
	if err != nil {
		return opErr(s.name, err)
	}
	s.tpc = tpc
	if rc.Restored > 0 && rc.Subtask == 0 {
		// Every restored transaction is committed (NewTwoPhaseCommit): what is left
		// in progress from earlier attempts of this job belongs to no checkpoint
		// that can still complete.
		if err := s.removeStale(); err != nil {
			return opErr(s.name, err)
		}
	}
	return nil
}

// hiddenPrefix starts the names of this job's in-progress files of this operator; with
// checkpointing the attempt, subtask and a sequence follow.
func (s *fileSink) hiddenPrefix() string {
	return fmt.Sprintf(".part-%s-%s-", s.name, s.job8)
}

// removeStale removes the in-progress files of this job's earlier attempts.
func (s *fileSink) removeStale() error {
	names, err := s.dir.Names()
	if err != nil {
		return err
	}
	prefix := s.hiddenPrefix()
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok || !strings.HasSuffix(n, ".inprogress") {
			continue
		}
		a, _, ok := strings.Cut(rest, "-")
		attempt, err := strconv.Atoi(a)
		if !ok || err != nil || attempt >= s.attempt {
			continue
		}
		if err := s.dir.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Begin implements Transactions: a new hidden part file.
func (s *fileSink) Begin() (*partFile, error) {
	prefix := fmt.Sprintf(".part-%s-%d.", s.name, s.subtask)
	if s.checkpointed {
		s.seq++
		prefix = fmt.Sprintf("%s%d-%d-%d.", s.hiddenPrefix(), s.attempt, s.subtask, s.seq)
	}
	f, name, err := s.dir.CreateTemp(prefix, ".inprogress")
	if err != nil {
		return nil, fmt.Errorf("create part file: %w", err)
	}
	p := &partFile{hidden: name, f: f, w: bufio.NewWriterSize(f, 64*1024)}
	if s.format == "csv" {
		p.csv = csv.NewWriter(p.w)
		// A header makes the file readable back by a csv source without listing fields.
		if err := p.csv.Write(s.schema.Names()); err != nil {
			_ = s.Abort(p)
			return nil, err
		}
	}
	return p, nil
}

// Prepare implements Transactions: flush the part file and name it.
func (s *fileSink) Prepare(p *partFile, cp CheckpointInfo) (*partFile, error) {
	if p.csv != nil {
		p.csv.Flush()
		if err := p.csv.Error(); err != nil {
			return p, fmt.Errorf("write %s: %w", p.hidden, err)
		}
	}
	if err := p.w.Flush(); err != nil {
		return p, fmt.Errorf("write %s: %w", p.hidden, err)
	}
	if cp.ID == 0 {
		p.final = fmt.Sprintf("part-%s-%d", s.name, s.subtask)
	} else {
		p.final = fmt.Sprintf("part-%s-%s-%d-%d", s.name, s.job8, s.subtask, cp.ID)
		// A checkpoint with no record for this subtask adds no file.
		p.remove = p.records == 0
	}
	return p, nil
}

// PreCommit implements Transactions: the part file is durable before it can be renamed.
func (s *fileSink) PreCommit(p *partFile) error {
	if p.f == nil {
		return nil
	}
	err := p.f.Sync()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	p.f = nil
	if err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Join(s.dir.Path(), p.hidden), err)
	}
	return nil
}

// Commit implements Transactions: rename to the final name. If the hidden file is gone and
// the final name exists, the commit happened already.
func (s *fileSink) Commit(p *partFile) error {
	if p.remove {
		if err := s.dir.Remove(p.hidden); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	// Private while in progress and pending (fsguard.Dir.CreateTemp), an output file gets
	// its published mode as it becomes visible. A missing hidden file is the rename's to judge.
	if err := s.dir.Publish(p.hidden); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("commit %s: %w", filepath.Join(s.dir.Path(), p.final), err)
	}
	if err := s.dir.Rename(p.hidden, p.final); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if names, lerr := s.dir.Names(); lerr == nil && slices.Contains(names, p.final) {
				return nil
			}
			if !strings.HasPrefix(p.hidden, s.hiddenPrefix()) {
				// A transaction of the job a savepoint was taken of, which wrote its
				// files elsewhere (this job writes another directory): a suspending
				// savepoint committed it there, and this job may not touch that
				// directory anyway.
				if s.log != nil {
					s.log.Info("part file of the savepoint's job not in this output directory: committed by that job, not here",
						"operator", s.name, "path", filepath.Join(s.dir.Path(), p.hidden))
				}
				return nil
			}
		}
		return fmt.Errorf("commit %s: %w", filepath.Join(s.dir.Path(), p.final), err)
	}
	return s.dir.Sync()
}

// Abort implements Transactions: close and remove the hidden file.
func (s *fileSink) Abort(p *partFile) error {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	if err := s.dir.Remove(p.hidden); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Codec implements Transactions.
func (s *fileSink) Codec() state.Codec[*partFile] { return partFileCodec{} }

// partFileCodec encodes a pending part file: uvarint len, hidden name, uvarint len, final
// name, one byte remove. Names are checked as plain names of the directory when used.
type partFileCodec struct{}

func (partFileCodec) Append(dst []byte, p *partFile) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p.hidden)))
	dst = append(dst, p.hidden...)
	dst = binary.AppendUvarint(dst, uint64(len(p.final)))
	dst = append(dst, p.final...)
	if p.remove {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func (partFileCodec) Decode(b []byte) (*partFile, error) {
	var names [2]string
	for i := range names {
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > 4096 || uint64(len(b)-k) < n {
			return nil, fmt.Errorf("part file state: malformed name")
		}
		names[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 1 || b[0] > 1 {
		return nil, fmt.Errorf("part file state: malformed flag")
	}
	return &partFile{hidden: names[0], final: names[1], remove: b[0] == 1}, nil
}

// SnapshotState implements Snapshotter.
func (s *fileSink) SnapshotState(cp CheckpointInfo) (func(context.Context) error, error) {
	return s.tpc.SnapshotState(cp)
}

// NotifyCheckpointComplete implements CheckpointListener: commit.
func (s *fileSink) NotifyCheckpointComplete(id int64) error {
	return s.tpc.NotifyCheckpointComplete(id)
}

// NotifyCheckpointAborted implements CheckpointListener.
func (s *fileSink) NotifyCheckpointAborted(id int64) error { return s.tpc.NotifyCheckpointAborted(id) }

func (s *fileSink) Process(_ int, e *Element) error {
	r := e.Record
	p := s.tpc.Current()
	p.records++
	var err error
	switch s.format {
	case "csv":
		for i, v := range r {
			s.row[i] = v.Text()
		}
		err = p.csv.Write(s.row)
	case "json":
		s.buf = AppendJSONRecord(s.buf[:0], s.schema, r)
		s.buf = append(s.buf, '\n')
		_, err = p.w.Write(s.buf)
	default:
		s.buf = appendPrintLine(s.buf[:0], r)
		s.buf = append(s.buf, '\n')
		_, err = p.w.Write(s.buf)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(s.dir.Path(), p.hidden), err)
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

// Finish commits the part file without checkpointing (flushed, synced and renamed to its
// final name); with checkpointing the final checkpoint commits it.
func (s *fileSink) Finish() error {
	return s.tpc.Finish()
}

// Close removes the part file in progress; prepared ones are left for a restore to commit.
func (s *fileSink) Close() error {
	if s.dir == nil {
		return nil
	}
	if s.tpc != nil {
		_ = s.tpc.Close()
	}
	err := s.dir.Close()
	s.dir = nil
	return err
}
