package dataflow

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
)

// TestPlanNeverReadsData: planning (what the JobManager does at submit)
// opens no data path. A csv source without fields whose "header" is a
// secret is planned with its schema deferred; the secret appears in no
// error. Before the fix, Plan read the file and quoted its first line.
func TestPlanNeverReadsData(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(secret, []byte("sha256:deadbeef,root,admins\n"), 0o600)
	spec := "name: x\noperators:\n  - {name: f, type: file, path: " + secret + ", format: csv}\n" +
		"  - {name: k, type: key_by, input: f, key: city}\n  - {name: c, type: aggregate, input: k, function: count}\n" +
		"  - {name: p, type: print, input: c}\n"
	s, err := ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Make the file unreadable by path too: any open would fail loudly.
	p, err := s.Plan(2)
	if err != nil {
		if strings.Contains(err.Error(), "deadbeef") {
			t.Fatalf("planning read the data file: %v", err)
		}
		t.Fatalf("plan: %v", err)
	}
	if got := strings.Join(p.Deferred(), ","); got != "f,k,c,p" {
		t.Errorf("deferred %q, want f,k,c,p", got)
	}
	if err := p.Compile(); err == nil || strings.Contains(err.Error(), "deadbeef") {
		t.Errorf("a deferred plan compiled, or its error shows the data: %v", err)
	}
	// The shape is still checked without the schema.
	bad := strings.Replace(spec, "input: k, function", "input: f, function", 1)
	if s, err := ParseSpec([]byte(bad), nil); err != nil {
		t.Fatal(err)
	} else if _, err := s.Plan(1); err == nil || !strings.Contains(err.Error(), "aggregate needs a keyed input") {
		t.Errorf("aggregate without key_by after a deferred source: %v", err)
	}
	// Where the job runs, the header is read through the job's grants, and
	// an unknown column is an error there.
	files, err := NewJobFiles([]FileAccess{{Operator: "f", Path: secret}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PlanWith(PlanOptions{DefaultParallelism: 1, CSVHeader: files.CSVHeader}); err == nil || !strings.Contains(err.Error(), "fields") {
		t.Errorf("runtime plan with a bad header: %v", err)
	}
}

func TestFileAccesses(t *testing.T) {
	spec := func(src, sink string) *Spec {
		s, err := ParseSpec([]byte("name: x\noperators:\n  - {name: src, type: file, path: '"+src+"'}\n  - {name: out, type: file, input: src, path: '"+sink+"'}\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	att := func(n string) bool { return n == "data.txt" }
	tests := []struct {
		name, src, sink, base, want string
		acc                         []FileAccess
	}{
		{name: "absolute", src: "/srv/in/a", sink: "/srv/out/alice/o",
			acc: []FileAccess{{Operator: "src", Path: "/srv/in/a"}, {Operator: "out", Write: true, Path: "/srv/out/alice/o"}}},
		{name: "dot-dot cleaned", src: "/srv/in/../secret/x", sink: "/srv/out/alice//o/",
			acc: []FileAccess{{Operator: "src", Path: "/srv/secret/x"}, {Operator: "out", Write: true, Path: "/srv/out/alice/o"}}},
		{name: "relative source", src: "../srv/in/a", sink: "/o", want: `operator "src" (line 3) path: "../srv/in/a" is relative: use an absolute path`},
		{name: "relative sink", src: "/a", sink: "../srv/out/alice/x", want: `operator "out" (line 4) path: "../srv/out/alice/x" is relative: use an absolute path`},
		{name: "attachment", src: "data.txt", sink: "/o",
			acc: []FileAccess{{Operator: "src", Path: "data.txt", Attached: true}, {Operator: "out", Write: true, Path: "/o"}}},
		{name: "attachment name is no sink", src: "/a", sink: "data.txt", want: `"data.txt" is relative`},
		{name: "base dir", src: "in/a", sink: "out", base: "/work",
			acc: []FileAccess{{Operator: "src", Path: "/work/in/a"}, {Operator: "out", Write: true, Path: "/work/out"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc, err := spec(tt.src, tt.sink).FileAccesses(att, tt.base)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(acc) != len(tt.acc) {
				t.Fatalf("got %+v, want %+v", acc, tt.acc)
			}
			for i := range acc {
				if acc[i] != tt.acc[i] {
					t.Errorf("access %d: got %+v, want %+v", i, acc[i], tt.acc[i])
				}
			}
		})
	}
}

// TestRunRefusesSymlinks: file sources and sinks open their paths through
// the job's grants: a symlinked input file or output directory fails the
// job, and nothing reaches the link's target.
func TestRunRefusesSymlinks(t *testing.T) {
	root := t.TempDir()
	secretDir := filepath.Join(root, "secret")
	os.MkdirAll(secretDir, 0o755)
	os.WriteFile(filepath.Join(secretDir, "data.txt"), []byte("TOP SECRET\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "in"), 0o755)
	os.MkdirAll(filepath.Join(root, "out"), 0o755)
	os.Symlink(filepath.Join(secretDir, "data.txt"), filepath.Join(root, "in/link.txt"))
	os.Symlink(secretDir, filepath.Join(root, "out/x"))

	var out bytes.Buffer
	read := "name: j\noperators:\n  - {name: f, type: file, path: " + filepath.Join(root, "in/link.txt") + "}\n  - {name: p, type: print, input: f}\n"
	err := RunLocal(context.Background(), mustPlan(t, read, nil, 1), &out)
	if !errors.Is(err, fsguard.ErrSymlink) || strings.Contains(out.String(), "SECRET") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("symlinked input: err %v, output %q", err, out.String())
	}
	write := "name: j\noperators:\n  - {name: g, type: generator, count: 3}\n  - {name: o, type: file, input: g, path: " + filepath.Join(root, "out/x") + "}\n"
	if err := RunLocal(context.Background(), mustPlan(t, write, nil, 1), nil); !errors.Is(err, fsguard.ErrSymlink) {
		t.Errorf("symlinked output directory: %v", err)
	}
	if entries, _ := os.ReadDir(secretDir); len(entries) != 1 {
		t.Errorf("files written into the link's target: %v", entries)
	}
}

// TestPrintEscapesControlCharacters: one record is one printed line,
// whatever it contains.
func TestPrintEscapesControlCharacters(t *testing.T) {
	spec := "name: j\noperators:\n  - {name: g, type: generator, count: 1}\n" +
		"  - {name: m, type: map, input: g, expr: 'key + \"\\nlevel=ERROR msg=forged\\r\\u001b[2J\\u0085\\u2028\\u202e\\tend\"', as: s}\n" +
		"  - {name: p, type: print, input: m}\n"
	var out bytes.Buffer
	if err := RunLocal(context.Background(), mustPlan(t, spec, nil, 1), &out); err != nil {
		t.Fatal(err)
	}
	want := `key-0\nlevel=ERROR msg=forged\r\u001b[2J\u0085\u2028\u202e\tend` + "\n"
	if out.String() != want {
		t.Errorf("printed %q\nwant    %q", out.String(), want)
	}
	// The same for print sinks writing part files.
	dir := filepath.Join(t.TempDir(), "o")
	if err := RunLocal(context.Background(), mustPlan(t, strings.Replace(spec, "input: m}", "input: m, path: "+dir+"}", 1), nil, 1), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "part-p-0")); string(b) != want {
		t.Errorf("part file %q\nwant      %q", b, want)
	}
	// Plain text is left alone, invalid UTF-8 shown as bytes.
	for in, want := range map[string]string{"héllo wörld ✓": "héllo wörld ✓", "a\xffb": `a\xffb`, "\x00": `\u0000`} {
		if got := string(appendPrintLine(nil, Record{String(in)})); got != want {
			t.Errorf("%q printed as %q, want %q", in, got, want)
		}
	}
}

// An operator with several read accesses (a connector's password file and CA) reads exactly
// those, through the guard: not another path, not a symlink, not another operator's file;
// an output directory stays an operator's only access.
func TestJobFilesReadFile(t *testing.T) {
	dir := t.TempDir()
	pw, ca, other := filepath.Join(dir, "pw"), filepath.Join(dir, "ca.crt"), filepath.Join(dir, "other")
	for _, f := range []string{pw, ca, other} {
		if err := os.WriteFile(f, []byte(filepath.Base(f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	files, err := NewJobFiles([]FileAccess{{Operator: "pg", Path: pw}, {Operator: "pg", Path: ca}, {Operator: "pg", Path: link}, {Operator: "x", Path: other}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pw, ca, filepath.Join(dir, ".", "pw")} {
		if b, err := files.ReadFile("pg", p); err != nil || string(b) != filepath.Base(filepath.Clean(p)) {
			t.Errorf("ReadFile(%s) = %q, %v", p, b, err)
		}
	}
	for _, p := range []string{other, link, filepath.Join(dir, "nosuch")} {
		if b, err := files.ReadFile("pg", p); err == nil {
			t.Errorf("ReadFile(%s) = %q, want a refusal", p, b)
		}
	}
	if _, err := files.OpenInput("pg"); err == nil {
		t.Error("OpenInput of an operator with several accesses succeeded")
	}
	if _, err := NewJobFiles([]FileAccess{{Operator: "s", Path: dir, Write: true}, {Operator: "s", Path: pw}}, nil); err == nil {
		t.Error("an output directory beside another access of the same operator was accepted")
	}
}
