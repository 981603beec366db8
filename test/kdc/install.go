package kdc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// packages are the Debian packages that provide the tools below.
var packages = []string{"krb5-kdc", "krb5-admin-server", "krb5-user"}

// tools are the MIT programs the harness runs.
var tools = []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit"}

// sbinDirs are searched besides $PATH: the KDC tools live in /usr/sbin,
// which is not on the PATH of every user or CI runner.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"}

var (
	installOnce sync.Once
	installErr  error
	toolPaths   map[string]string
)

// lookTool finds an MIT tool on $PATH or in the sbin directories.
func lookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// findTools returns the paths of all tools, or the names of the missing ones.
func findTools() (map[string]string, []string) {
	found := map[string]string{}
	var missing []string
	for _, t := range tools {
		if p, ok := lookTool(t); ok {
			found[t] = p
		} else {
			missing = append(missing, t)
		}
	}
	return found, missing
}

// ensureTools installs MIT krb5 when a tool is missing (once per test
// binary), and skips the test when that is impossible, except under CI
// where a missing KDC must fail loudly rather than silently skip the
// Kerberos tests.
func ensureTools(t testing.TB) map[string]string {
	t.Helper()
	installOnce.Do(func() { toolPaths, installErr = install() })
	if installErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kdc: MIT krb5 is not available and could not be installed: %v", installErr)
		}
		t.Skipf("kdc: MIT krb5 is not available (set CI=true to fail instead): %v", installErr)
	}
	return toolPaths
}

func install() (map[string]string, error) {
	if found, missing := findTools(); len(missing) == 0 {
		return found, nil
	}
	// Test binaries of several packages run at once: a file lock keeps
	// them from racing for dpkg's lock, and the second one finds the
	// tools installed by the first.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "sluice-kdc-install.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock install lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	found, missing := findTools()
	if len(missing) == 0 {
		return found, nil
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return nil, fmt.Errorf("%s missing and no apt-get to install %s", strings.Join(missing, ", "), strings.Join(packages, " "))
	}
	var prefix []string
	if os.Geteuid() != 0 {
		sudo, err := exec.LookPath("sudo")
		if err != nil {
			return nil, fmt.Errorf("%s missing; installing %s needs root or sudo", strings.Join(missing, ", "), strings.Join(packages, " "))
		}
		// -n: never prompt for a password in a test run.
		prefix = []string{sudo, "-n", "--preserve-env=DEBIAN_FRONTEND"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(args ...string) error {
		argv := append(append([]string{}, prefix...), apt)
		argv = append(argv, args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out, 2000))
		}
		return nil
	}
	if err := run("update", "-qq"); err != nil {
		return nil, err
	}
	if err := run(append([]string{"install", "-y", "-qq", "--no-install-recommends",
		"-o", "DPkg::Lock::Timeout=120"}, packages...)...); err != nil {
		return nil, err
	}
	found, missing = findTools()
	if len(missing) > 0 {
		return nil, fmt.Errorf("installed %s but %s still missing", strings.Join(packages, " "), strings.Join(missing, ", "))
	}
	return found, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
