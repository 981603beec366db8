package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// podExecCommand is the hidden first argument with which the agent re-execs
// itself as a container's first process: in the container's new mount
// namespace (CLONE_NEWNS, set by the agent) it mounts the volumes at their
// mountPaths and then execs the container's command. Go cannot run code
// between fork and exec, hence the re-exec.
const podExecCommand = "pod-exec"

type mountFlag []string

func (m *mountFlag) String() string     { return strings.Join(*m, ",") }
func (m *mountFlag) Set(v string) error { *m = append(*m, v); return nil }

func podExec(args []string) {
	fs := flag.NewFlagSet(podExecCommand, flag.ExitOnError)
	chdir := fs.String("chdir", "", "working directory")
	var mounts mountFlag
	fs.Var(&mounts, "mount", "SRC:DST:ro|rw, repeated")
	_ = fs.Parse(args)
	argv := fs.Args()
	if err := mountAndExec(*chdir, mounts, argv); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-test-node pod-exec:", err)
		os.Exit(127)
	}
}

func mountAndExec(chdir string, mounts []string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command")
	}
	// Nothing mounted here may reach the host's mount table.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private in the pod's mount namespace: %w", err)
	}
	type m struct{ src, dst, mode string }
	var ms []m
	for _, s := range mounts {
		parts := strings.Split(s, ":")
		if len(parts) != 3 {
			return fmt.Errorf("bad -mount %q", s)
		}
		ms = append(ms, m{parts[0], parts[1], parts[2]})
	}
	// Parents before children, so a mount inside another lands on top.
	sort.Slice(ms, func(i, j int) bool {
		return strings.Count(filepath.Clean(ms[i].dst), "/") < strings.Count(filepath.Clean(ms[j].dst), "/")
	})
	for _, x := range ms {
		if err := mountPoint(x.src, x.dst); err != nil {
			return err
		}
		if err := syscall.Mount(x.src, x.dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s at %s: %w", x.src, x.dst, err)
		}
		if x.mode == "ro" {
			if err := syscall.Mount("", x.dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("make %s read-only: %w", x.dst, err)
			}
		}
	}
	if chdir != "" {
		if err := os.Chdir(chdir); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
	}
	bin := argv[0]
	if !strings.Contains(bin, "/") {
		p, err := exec.LookPath(bin)
		if err != nil {
			return fmt.Errorf("command %s: %w", bin, err)
		}
		bin = p
	}
	return syscall.Exec(bin, argv, os.Environ())
}

// mountPoint makes sure dst exists with src's kind (directory or file), as
// a container runtime creates missing mount points in the image. Here they
// are created on the host's file system (empty; only the mount is private).
func mountPoint(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("mount source: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if st.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", dst, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", dst, err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", dst, err)
	}
	return f.Close()
}
