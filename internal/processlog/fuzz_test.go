package processlog

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

// FuzzLogFileName reads the file names a REST caller puts into GET .../logs/{filename} and
// the process ids log file names are made of: a process's file name never leaves its
// directory, and a read answers one of the process's own files (the current one or a
// rotated one by its exact name) or ErrNoSuchLog; never another file, whatever the name
// (.., separators, NUL, symbolic links, leading zeros).
func FuzzLogFileName(f *testing.F) {
	for _, s := range [][2]string{
		{"sluice-taskmanager-tm-1.log", "tm-1"},
		{"sluice-taskmanager-tm-1.log.1", "tm-1"},
		{"sluice-taskmanager-tm-1.log.01", "../../etc"},
		{"../secret", ".."},
		{"sluice-taskmanager-tm-1.log/../secret", "a/b"},
		{"sluice-taskmanager-tm-1.log.2", "tm\x00-1"},
		{"sluice-taskmanager-tm-1.log.-1", ""},
		{"sluice-taskmanager-tm-1.log.+1", "tm-1"},
		{"/etc/passwd", "tm-1"},
		{"link", "tm-1"},
	} {
		f.Add(s[0], s[1])
	}
	root := f.TempDir()
	dir := filepath.Join(root, "log")
	cfg := config.New()
	if err := cfg.Set("env.log.dir", dir); err != nil {
		f.Fatal(err)
	}
	own := ForProcess(cfg, "taskmanager", "tm-1")
	own.Keep = 2
	for range 2 {
		file, err := own.Open()
		if err != nil {
			f.Fatal(err)
		}
		file.WriteString("ours\n")
		file.Close()
	}
	os.WriteFile(filepath.Join(root, "secret"), []byte("secret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "other.log"), []byte("secret\n"), 0o600)
	os.Symlink(filepath.Join(root, "secret"), filepath.Join(dir, own.Name+".2"))
	os.Symlink(filepath.Join(root, "secret"), filepath.Join(dir, "link"))
	f.Fuzz(func(t *testing.T, name, id string) {
		p := ForProcess(cfg, "taskmanager", id)
		if filepath.Base(p.Name) != p.Name || p.Name == ".." || strings.ContainsAny(p.Name, "/\x00") || filepath.Dir(filepath.Join(dir, p.Name)) != dir {
			t.Fatalf("id %q: log file name %q leaves the directory", id, p.Name)
		}
		data, _, err := own.Read(name, 0)
		if err != nil {
			if !errors.Is(err, ErrNoSuchLog) {
				t.Fatalf("Read(%q): %v, want ErrNoSuchLog", name, err)
			}
			return
		}
		if name != own.Name && name != own.Name+".1" {
			t.Fatalf("Read(%q) answered %q: not one of the process's own files", name, data)
		}
		if string(data) != "ours\n" {
			t.Fatalf("Read(%q) = %q", name, data)
		}
		if _, err := strconv.Atoi(strings.TrimPrefix(name, own.Name+".")); name != own.Name && err != nil {
			t.Fatalf("Read(%q): not a rotated file's name", name)
		}
	})
}
