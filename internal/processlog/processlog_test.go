package processlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenRotatesAndListsOwnFilesOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	f := Files{Dir: dir, Name: "sluice-taskmanager-tm-1.log", Keep: 2}
	for run := 1; run <= 4; run++ {
		file, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteString(strings.Repeat("x", run)); err != nil {
			t.Fatal(err)
		}
		file.Close()
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("log directory: %v %v, want 0700", st.Mode(), err)
	}
	// Another process's file, a symbolic link and a directory named like ours are not listed.
	os.WriteFile(filepath.Join(dir, "sluice-jobmanager.log"), []byte("jm"), 0o600)
	os.WriteFile(filepath.Join(t.TempDir(), "secret"), []byte("secret"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(dir, f.Name+".3"))
	os.Mkdir(filepath.Join(dir, f.Name+".4"), 0o700)

	logs, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range logs {
		names = append(names, l.Name)
	}
	if strings.Join(names, ",") != f.Name+","+f.Name+".1,"+f.Name+".2" {
		t.Fatalf("listed %v, want the current file and two rotated ones, newest first", names)
	}
	if logs[0].Size != 4 || logs[1].Size != 3 || logs[2].Size != 2 || logs[0].MTime <= 0 {
		t.Errorf("sizes: %+v (run 4 is current, run 1 fell off)", logs)
	}
	if st, _ := os.Stat(filepath.Join(dir, f.Name)); st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestReadRefusesWhatIsNotOwnFile(t *testing.T) {
	dir := t.TempDir()
	f := Files{Dir: dir, Name: "sluice-jobmanager.log", Keep: 1}
	file, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	file.WriteString("line 1\nline 2\n")
	file.Close()
	os.WriteFile(filepath.Join(dir, "other.log"), []byte("not ours"), 0o600)
	os.Symlink("/etc/hostname", filepath.Join(dir, f.Name+".1"))

	data, truncated, err := f.Read(f.Name, 0)
	if err != nil || string(data) != "line 1\nline 2\n" || truncated {
		t.Fatalf("own file: %q %v %v", data, truncated, err)
	}
	data, truncated, err = f.Read(f.Name, 7)
	if err != nil || string(data) != "line 2\n" || !truncated {
		t.Errorf("the last 7 bytes: %q %v %v", data, truncated, err)
	}
	for _, name := range []string{"other.log", "../" + filepath.Base(dir) + "/" + f.Name, f.Name + ".1", f.Name + ".01", "/etc/passwd", "", f.Name + "/.."} {
		if _, _, err := f.Read(name, 0); !errors.Is(err, ErrNoSuchLog) {
			t.Errorf("Read(%q): %v, want ErrNoSuchLog", name, err)
		}
	}
	if _, _, err := (Files{}).Read("sluice-jobmanager.log", 0); !errors.Is(err, ErrNoSuchLog) {
		t.Errorf("without env.log.dir: %v", err)
	}
	if logs, err := (Files{}).List(); err != nil || len(logs) != 0 {
		t.Errorf("without env.log.dir: %v %v", logs, err)
	}
}
