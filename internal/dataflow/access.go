package dataflow

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
)

// FileAccess is one file an operator reads or one directory it writes: what
// the JobManager authorizes at submit, and what the TaskManager lets the
// operator open (internal/security/fsguard), nothing else.
type FileAccess struct {
	Operator string `json:"operator"`
	Write    bool   `json:"write,omitempty"` // a sink's output directory; else a source's input file
	// Path is absolute and clean; for an attached file, its name.
	Path     string `json:"path"`
	Attached bool   `json:"attached,omitempty"`
}

// FileAccesses lists the files the job's operators read and write, with
// paths cleaned ("/srv/in/../x" is "/srv/x"). A relative path is refused:
// the JobManager that checks it and the TaskManagers that open it have
// different working directories. Two exceptions: a source whose path is
// the name of a file attached to the job reads that attachment (attached
// says whether a name is one; nil: none is), and when baseDir is set
// (sluice local: the caller is the cluster) relative paths are taken
// against it.
func (s *Spec) FileAccesses(attached func(name string) bool, baseDir string) ([]FileAccess, error) {
	var out []FileAccess
	for _, o := range s.Operators {
		for _, acc := range o.Options.Access(o) {
			if acc.Scheme != "file" {
				continue
			}
			a, err := fileAccess(o, acc, attached, baseDir)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func fileAccess(o *OperatorSpec, acc Access, attached func(name string) bool, baseDir string) (FileAccess, error) {
	write, path := acc.Write, acc.Target
	a := FileAccess{Operator: o.Name, Write: write, Path: path}
	switch {
	case filepath.IsAbs(path):
		a.Path = filepath.Clean(path)
	case !write && attached != nil && attached(path):
		a.Attached = true
	case baseDir != "" && filepath.IsAbs(baseDir):
		a.Path = filepath.Join(baseDir, path)
	default:
		hint := ""
		if !write {
			hint = ", or attach the file (sluice run --file) and give its base name"
		}
		return FileAccess{}, o.errf("path", "%q is relative: use an absolute path (the cluster's processes do not share your working directory)%s", path, hint)
	}
	return a, nil
}

// JobFiles opens the files of a job's file sources and sinks on a
// TaskManager: each operator only its own authorized paths, through a
// fsguard.Guard, or its attached file, resolved only among the job's own
// attachments. An operator may have several accesses (a connector reading
// a password file and a CA certificate); a file source or sink has one.
type JobFiles struct {
	access   map[string][]FileAccess
	guard    *fsguard.Guard
	attached func(name string) (string, bool)
}

// NewJobFiles returns the opener for a job with the given accesses.
// attached maps an attachment's name to its local copy (nil: the job has
// none).
func NewJobFiles(accesses []FileAccess, attached func(name string) (string, bool)) (*JobFiles, error) {
	j := &JobFiles{access: make(map[string][]FileAccess, len(accesses)), attached: attached}
	var grants []fsguard.Grant
	for _, a := range accesses {
		for _, b := range j.access[a.Operator] {
			if b.Write || a.Write {
				return nil, fmt.Errorf("job files: operator %q: an output directory must be its only file access", a.Operator)
			}
		}
		j.access[a.Operator] = append(j.access[a.Operator], a)
		switch {
		case a.Attached && a.Write:
			return nil, fmt.Errorf("job files: operator %q: an attached file cannot be written", a.Operator)
		case a.Attached:
		case a.Write:
			grants = append(grants, fsguard.Grant{Path: a.Path, Mode: fsguard.Write})
		default:
			grants = append(grants, fsguard.Grant{Path: a.Path, Mode: fsguard.Read})
		}
	}
	g, err := fsguard.New(grants)
	if err != nil {
		return nil, fmt.Errorf("job files: %w", err)
	}
	j.guard = g
	return j, nil
}

func (j *JobFiles) lookup(operator string, write bool) (FileAccess, error) {
	if j == nil {
		return FileAccess{}, fmt.Errorf("operator %q: this task may open no files", operator)
	}
	as := j.access[operator]
	if len(as) != 1 || as[0].Write != write {
		return FileAccess{}, fmt.Errorf("operator %q: no file access was authorized for it at submit", operator)
	}
	return as[0], nil
}

// maxReadFile bounds ReadFile: it reads small files (a password, a certificate).
const maxReadFile = 1 << 20

// ReadFile reads one of the files an operator was authorized to read at submit (a
// connector's trust store or password file), named by its absolute path as the spec gave
// it, through the same checks as a file source's input. Files of up to 1 MiB.
func (j *JobFiles) ReadFile(operator, path string) ([]byte, error) {
	if j == nil {
		return nil, fmt.Errorf("operator %q: this task may open no files", operator)
	}
	clean := filepath.Clean(path)
	for _, a := range j.access[operator] {
		if a.Write || a.Attached || a.Path != clean {
			continue
		}
		f, err := j.guard.OpenFile(a.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxReadFile+1))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", a.Path, err)
		}
		if len(b) > maxReadFile {
			return nil, fmt.Errorf("read %s: larger than %d bytes", a.Path, maxReadFile)
		}
		return b, nil
	}
	return nil, fmt.Errorf("operator %q: reading %s was not authorized for it at submit", operator, path)
}

// OpenInput opens the input file of a file source.
func (j *JobFiles) OpenInput(operator string) (*os.File, error) {
	a, err := j.lookup(operator, false)
	if err != nil {
		return nil, err
	}
	if a.Attached {
		local, ok := "", false
		if j.attached != nil {
			local, ok = j.attached(a.Path)
		}
		if !ok {
			return nil, fmt.Errorf("operator %q: attached file %q is not among the job's attachments", operator, a.Path)
		}
		return os.Open(local)
	}
	return j.guard.OpenFile(a.Path)
}

// OutputDir opens (creating) the output directory of a file or print sink.
func (j *JobFiles) OutputDir(operator string) (*fsguard.Dir, error) {
	a, err := j.lookup(operator, true)
	if err != nil {
		return nil, err
	}
	return j.guard.OpenDir(a.Path)
}

// CSVHeader reads the header line of a csv source that lists no fields, on
// the TaskManager, through the same checks as the source's own open.
func (j *JobFiles) CSVHeader(op *OperatorSpec) ([]string, error) {
	f, err := j.OpenInput(op.Name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return nil, fmt.Errorf("empty file")
	}
	return parseCSVLine(strings.TrimRight(line, "\r\n"))
}
