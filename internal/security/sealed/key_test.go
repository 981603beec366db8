package sealed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(i)
	}
	writeKey := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// Chmod, not the create mode, so the umask does not decide the test.
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeKey("good", raw, 0o600)
	k, err := LoadKey(good)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != "d42809434b91fe48" {
		t.Fatalf("id %s", k.ID())
	}
	if strings.Contains(k.String(), string(raw)) || !strings.Contains(k.String(), k.ID()) {
		t.Fatalf("String %q", k.String())
	}
	if _, err := LoadKey(writeKey("readonly", raw, 0o400)); err != nil {
		t.Fatalf("0400: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(link); err != nil {
		t.Fatalf("link to a private key: %v", err)
	}
	hexKey := []byte(strings.Repeat("ab", KeySize) + "\n")
	tests := []struct {
		name, path string
		want       []string
	}{
		{"group readable", writeKey("g", raw, 0o640), []string{"mode 0640", "chmod 600"}},
		{"world readable", writeKey("w", raw, 0o604), []string{"mode 0604"}},
		{"group writable", writeKey("gw", raw, 0o620), []string{"mode 0620"}},
		{"short", writeKey("short", raw[:31], 0o600), []string{"31 bytes", "exactly 32 raw bytes", "head -c 32 /dev/urandom"}},
		{"long", writeKey("long", append(raw, '\n'), 0o600), []string{"33 bytes"}},
		{"hex", writeKey("hex", hexKey, 0o600), []string{"65 bytes", "looks like hex"}},
		{"empty", writeKey("empty", nil, 0o600), []string{"0 bytes"}},
		{"missing", filepath.Join(dir, "nope"), []string{"no such file"}},
		{"directory", dir, []string{"not a regular file"}},
		{"link to a readable key", func() string {
			p := filepath.Join(dir, "link-g")
			if err := os.Symlink(filepath.Join(dir, "g"), p); err != nil {
				t.Fatal(err)
			}
			return p
		}(), []string{"mode 0640"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKey(tt.path)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range append(tt.want, KeyFileKey, tt.path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestLoadKeyOtherOwner: a private key file owned by another user is
// refused. As root the file is given to another uid; otherwise the process
// is made to see its own file as another user's.
func TestLoadKeyOtherOwner(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, make([]byte, KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
	} else {
		real := os.Geteuid()
		geteuid = func() int { return real + 1 }
		defer func() { geteuid = os.Geteuid }()
	}
	_, err := LoadKey(p)
	if err == nil || !strings.Contains(err.Error(), "owned by uid") || !strings.Contains(err.Error(), KeyFileKey) {
		t.Fatalf("key of another user: %v", err)
	}
}

func TestNewKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKey(make([]byte, n)); err == nil {
			t.Errorf("NewKey(%d bytes) accepted", n)
		}
	}
}
