package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A shell block of the README or docs/ is run by TestDocs unless the line
// before its opening fence is a marker saying why not:
//
//	<!-- docs-test: not run: needs your own KDC -->
//
// Blocks that show what a command prints, configuration and the like are
// not shell blocks (```text, ```yaml) and are not run.
const notRunMarker = "<!-- docs-test: not run:"

// docBlock is one ```sh block of a document.
type docBlock struct {
	file   string // relative to the repository
	line   int    // of the opening fence
	code   string
	notRun string // the reason, when marked
}

var fenceRE = regexp.MustCompile("^```(\\w*)\\s*$")

// shellBlocks returns the ```sh and ```bash blocks of a Markdown file.
func shellBlocks(t *testing.T, root, rel string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []docBlock
		cur     *docBlock
		prev    string
		inFence bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case inFence:
				if cur != nil {
					out = append(out, *cur)
				}
				cur, inFence = nil, false
			default:
				inFence = true
				if m[1] == "sh" || m[1] == "bash" {
					cur = &docBlock{file: rel, line: n}
					if strings.HasPrefix(strings.TrimSpace(prev), notRunMarker) {
						cur.notRun = strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(prev), notRunMarker)), "-->")
					}
				}
			}
		} else if inFence && cur != nil {
			cur.code += line + "\n"
		}
		prev = line
	}
	if inFence {
		t.Fatalf("%s: unterminated code fence", rel)
	}
	return out
}

// docFiles are the documents whose blocks a user is told to run.
func docFiles(t *testing.T, root string) []string {
	files := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		files = append(files, rel)
	}
	return files
}

// docPorts are the fixed ports the documents use; each is replaced by a
// free port so the run does not depend on what else listens here.
var docPorts = []string{"8081", "8443", "6123"}

// docChecks are what a block's output must show beyond a zero exit, keyed
// by a line of the block.
var docChecks = map[string]*regexp.Regexp{
	"go run ./cmd/sluice local examples/wordcount.yaml":      regexp.MustCompile(`(?m)^nation 5$`),
	`sluice run examples/wordcount.yaml --param input="$PWD`: regexp.MustCompile(`FINISHED`),
	"cat /tmp/wc/part-*":                                       regexp.MustCompile(`(?m)^nation 5$`),
	"cat out/alice/wc/part-*":                                  regexp.MustCompile(`(?m)^nation 5$`),
	"bin/sluice whoami":                                        regexp.MustCompile(`alice`),
	"head -n 2 /tmp/events.json":                               regexp.MustCompile(`(?m)^\{"event_type":0,"person":\{"id":1000,.*"auction":null,"bid":null\}\n\{"event_type":1,"person":null,"auction":\{"id":1000,`),
	"head -c 300 /tmp/bids/part-out-0":                         regexp.MustCompile(`(?m)^\{"event_type":2,"person":null,"auction":null,"bid":\{"auction":\d+,`),
	"cat /tmp/q5/part-*":                                       regexp.MustCompile(`(?m)^\{"auction":\d+,"num":\d+\}$`),
	"bin/sluice auth can-i submit jobs":                        regexp.MustCompile(`(?m)^yes`),
	"curl -s localhost:8081/overview":                          regexp.MustCompile(`"taskmanagers": ?2`),
	"--param output=/etc/wc":                                   regexp.MustCompile(`file:/etc/wc(.|\n)*refused, as it should be`),
	"diff <(cat /tmp/reference/part-* | sort)":                 regexp.MustCompile(`(?m)^same output$`),
	`echo "savepoint at $sp"`:                                  regexp.MustCompile(`savepoint at file:/\S+/savepoint-[0-9a-f]{6}-`),
	"go run ./cmd/sluice local examples/stateful.yaml --param": regexp.MustCompile(`(?m)^key-4 `),
}

// TestDocs runs every shell block of the README and docs/ as a user would:
// in a copy of the repository, one shell per document so that a block may
// use what an earlier one started, on free ports. Each block must exit 0
// and show what docChecks expects.
func TestDocs(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var run, notRun int
	for _, file := range docFiles(t, root) {
		blocks := shellBlocks(t, root, file)
		var todo []docBlock
		for _, b := range blocks {
			if b.notRun != "" {
				t.Logf("%s:%d not run: %s", b.file, b.line, b.notRun)
				notRun++
				continue
			}
			todo = append(todo, b)
		}
		if len(todo) == 0 {
			continue
		}
		run += len(todo)
		t.Run(file, func(t *testing.T) {
			// Each document runs in its own copy of the repository on its own ports.
			t.Parallel()
			runDocBlocks(t, root, todo)
		})
	}
	t.Logf("ran %d shell blocks; %d marked not run", run, notRun)
	if run == 0 {
		t.Fatal("no shell block found: the extraction is broken")
	}
}

// runDocBlocks runs the blocks of one document in one bash, in order, in a
// fresh copy of the repository.
func runDocBlocks(t *testing.T, root string, blocks []docBlock) {
	work := copyRepo(t, root)
	ports := map[string]string{}
	for _, p := range docPorts {
		ports[p] = strconv.Itoa(freePort(t))
	}
	rewrite := func(s string) string {
		for from, to := range ports {
			s = regexp.MustCompile(`\b`+from+`\b`).ReplaceAllString(s, to)
		}
		// Per-test /tmp paths: parallel runs must not share them.
		return strings.ReplaceAll(s, "/tmp/", filepath.Join(work, "tmp")+"/")
	}
	for _, f := range []string{"conf/config.yaml"} {
		data, err := os.ReadFile(filepath.Join(work, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), []byte(rewrite(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(work, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	// The driver sources each block in one shell (background jobs and
	// variables carry over, as in a user's terminal) and prints a marker
	// with the block's status: 1 when any command of it failed.
	var script strings.Builder
	script.WriteString("set -o pipefail -E\ntrap 'echo \"@@failed: $BASH_COMMAND (exit $?)\"; failed=1' ERR\n")
	for i, b := range blocks {
		name := filepath.Join(work, fmt.Sprintf(".block-%d.sh", i))
		if err := os.WriteFile(name, []byte(rewrite(b.code)), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&script, "echo '@@block %d start'\nfailed=0\nsource %q\necho \"@@block %d status $failed\"\n", i, name, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	// sluice is on the PATH, as for a user who installed it; the README
	// builds bin/sluice itself.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(sluiceBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "SLUICECONFIG="+filepath.Join(work, "tmp", "no-client-config.yaml"), "SLUICE_JOBMANAGER=", "SLUICE_TOKEN=",
		// The blocks' go build and go run compile in a fresh copy: without -trimpath the
		// copy's directory is part of every object's cache key, and each document would
		// compile all of sluice again (a minute per document on 2 cores).
		"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -trimpath"))
	if err := os.WriteFile(filepath.Join(work, "tmp", "no-client-config.yaml"), []byte("contexts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe: the processes the blocks leave running in the
	// background hold their output open after the shell exits.
	outPath := filepath.Join(work, "tmp", "output")
	outFile, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	inOwnGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd, 9); return nil }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(cmd, 9) }) // what the blocks left running
	err = cmd.Wait()
	// Every process the blocks started goes with the group.
	killGroup(cmd, 9)
	data, _ := os.ReadFile(outPath)
	log := string(data)
	if err != nil {
		t.Errorf("the shell failed: %v", err)
	}
	for i, b := range blocks {
		body := between(log, fmt.Sprintf("@@block %d start\n", i), fmt.Sprintf("@@block %d status ", i))
		status := ""
		if j := strings.Index(log, fmt.Sprintf("@@block %d status ", i)); j >= 0 {
			status, _, _ = strings.Cut(log[j+len(fmt.Sprintf("@@block %d status ", i)):], "\n")
		}
		where := fmt.Sprintf("%s:%d", b.file, b.line)
		switch {
		case status == "":
			t.Errorf("%s did not run to its end:\n%s", where, body)
			continue
		case status != "0":
			t.Errorf("%s exited %s:\n--- block ---\n%s--- output ---\n%s", where, status, b.code, body)
			continue
		}
		for _, line := range strings.Split(b.code, "\n") {
			for prefix, want := range docChecks {
				if strings.HasPrefix(strings.TrimSpace(line), prefix) && !want.MatchString(rewrite(body)) && !want.MatchString(body) {
					t.Errorf("%s: the output of %q does not match %s:\n%s", where, prefix, want, body)
				}
			}
		}
	}
}

// between returns the text of s between the first from and the next to.
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// copyRepo copies the repository's tracked files (and its untracked,
// not ignored ones) into a temporary directory.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, rel := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
