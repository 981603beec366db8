package checkpoint

import (
	"strings"
	"testing"
)

func TestLayoutNames(t *testing.T) {
	if got, err := JobDir("/srv/ckpt/", "5d1f2a00"); err != nil || got != "/srv/ckpt/5d1f2a00" {
		t.Errorf("JobDir: %q %v", got, err)
	}
	for _, bad := range []struct{ root, id string }{
		{"srv/ckpt", "5d1f"}, {"/srv", ""}, {"/srv", ".."}, {"/srv", "a/b"}, {"/srv", "-x"},
		{"/srv", "."}, {"/srv", strings.Repeat("a", 65)}, {"/srv", "a\x00"},
	} {
		if got, err := JobDir(bad.root, bad.id); err == nil {
			t.Errorf("JobDir(%q, %q) = %q", bad.root, bad.id, got)
		}
	}
	if CheckpointDir(17) != "chk-17" || CheckpointFile(17, "3-0-keyed") != "chk-17/3-0-keyed" || SharedFile("a.sst") != "shared/a.sst" {
		t.Error("checkpoint names")
	}
	if StateFile(3, 0, KindKeyed) != "3-0-keyed" || StateFile(5, 1, KindPebble) != "5-1-pebble" {
		t.Error("StateFile")
	}
	for name, want := range map[string]int64{"chk-1": 1, "chk-17": 17, "chk-9223372036854775807": 1<<63 - 1} {
		if id, ok := ParseCheckpointDir(name); !ok || id != want {
			t.Errorf("ParseCheckpointDir(%q) = %d %v", name, id, ok)
		}
	}
	for _, name := range []string{"chk-", "chk-0", "chk-017", "chk--1", "chk-+1", "chk-1x", "shared", "_metadata", "chk-99999999999999999999"} {
		if id, ok := ParseCheckpointDir(name); ok {
			t.Errorf("ParseCheckpointDir(%q) = %d", name, id)
		}
	}
	sp, err := SavepointDir("5d1f2a7788")
	if err != nil || !strings.HasPrefix(sp, "savepoint-5d1f2a-") || len(sp) != len("savepoint-5d1f2a-")+12 {
		t.Errorf("SavepointDir: %q %v", sp, err)
	}
	if sp2, _ := SavepointDir("5d1f2a7788"); sp2 == sp {
		t.Error("SavepointDir repeats")
	}
	if sp, err := SavepointDir("abc"); err != nil || !strings.HasPrefix(sp, "savepoint-abc-") {
		t.Errorf("short job id: %q %v", sp, err)
	}
}

func TestCheckRelPath(t *testing.T) {
	for _, ok := range []string{"chk-17/3-0-keyed", "shared/9f3c21aa-000123.sst", "_metadata", "chk-1/5-1-pebble/MANIFEST-000005", "a b"} {
		if err := CheckRelPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "..", "../x", "chk-1/../../x", "chk-1//x", "chk-1/", "./x", "x/.", "a\x00b", `a\..\b`, "a\nb", strings.Repeat("a", 256), strings.Repeat("a/", 600) + "a"} {
		if err := CheckRelPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckSnapshotPath(t *testing.T) {
	tests := []struct {
		path      string
		id        int64
		savepoint bool
		ok        bool
	}{
		{"chk-17/3-0-keyed", 17, false, true},
		{"chk-17/5-1-pebble/000012.sst", 17, false, true},
		{"shared/9f3c21aa-000123.sst", 17, false, true},
		{"chk-16/3-0-keyed", 17, false, false}, // another checkpoint's directory
		{"chk-17", 17, false, false},
		{"shared", 17, false, false},
		{"3-0-keyed", 17, false, false},
		{"other/3-0-keyed", 17, false, false},
		{"chk-17/_metadata", 17, false, false},
		{"3-0-keyed", 4, true, true},
		{"chk-4/3-0-keyed", 4, true, false},
		{"_metadata", 4, true, false},
		{"../3-0-keyed", 4, true, false},
	}
	for _, tt := range tests {
		if err := CheckSnapshotPath(tt.path, tt.id, tt.savepoint); (err == nil) != tt.ok {
			t.Errorf("CheckSnapshotPath(%q, %d, %v) = %v", tt.path, tt.id, tt.savepoint, err)
		}
	}
}
