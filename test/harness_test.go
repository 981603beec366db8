// Package test holds the integration tests: they build the sluice binary and
// start real JobManager and TaskManager processes on loopback.
//
// A test that spends most of its time waiting on processes of its own (a rate-limited
// job, a checkpoint interval, a restart delay) calls t.Parallel, so that the suite's
// waits overlap on a 2-core machine; make integration runs -parallel 4. Such a test
// uses no fixed port or path, no t.Setenv and no shared control plane.
package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/k8s"
)

var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-it-")
	if err != nil {
		panic(err)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	// -trimpath: the objects do not depend on the checkout's directory, so TestDocs'
	// builds in copies of the repository (GOFLAGS=-trimpath) find them in the build cache.
	build := exec.Command("go", "build", "-trimpath", "-o", sluiceBin, "../cmd/sluice")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	k8s.StopShared() // the Kubernetes control plane, if a test started it
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is where examples/ lives.
func repoRoot(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a sluice process started by a test; it is killed at cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// Log returns everything the process wrote so far.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Kill kills the process's whole group (it runs in its own) and waits for it.
func (p *proc) Kill() {
	killGroup(p.cmd, syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the process's group.
func (p *proc) Signal(sig syscall.Signal) { killGroup(p.cmd, sig) }

// inOwnGroup makes cmd start in a process group of its own, so that the
// test can kill it with every child it started. Pdeathsig kills it too if
// the test binary itself dies (a panic on -timeout runs no cleanup).
func inOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup signals the process group of a command started with inOwnGroup.
func killGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startProcBin(t, name, sluiceBin, args...)
}

// startProcBin starts any program as a test process.
func startProcBin(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	return startProcWith(t, procOptions{name: name, bin: bin}, args...)
}

// startProcIn is startProc with the process's working directory.
func startProcIn(t *testing.T, dir, name string, args ...string) *proc {
	t.Helper()
	return startProcWith(t, procOptions{name: name, dir: dir}, args...)
}

// startProcEnv is startProc with extra environment variables (TMPDIR, to
// see what a process leaves behind in its temporary directory).
func startProcEnv(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return startProcWith(t, procOptions{name: name, env: env}, args...)
}

// procOptions say how to start a test process.
type procOptions struct {
	name string
	bin  string   // default: the sluice binary under test
	dir  string   // working directory; default: the repository
	env  []string // added to the test's environment
}

// startProcWith starts a program in its own process group; at cleanup it
// is interrupted, then killed with its group, and its log shown if the
// test failed.
func startProcWith(t *testing.T, o procOptions, args ...string) *proc {
	t.Helper()
	if o.bin == "" {
		o.bin = sluiceBin
	}
	if o.dir == "" {
		o.dir = repoRoot(t)
	}
	p := &proc{name: o.name, done: make(chan struct{})}
	p.cmd = exec.Command(o.bin, args...)
	p.cmd.Dir = o.dir
	if o.env != nil {
		p.cmd.Env = append(os.Environ(), o.env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	inOwnGroup(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", o.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.Kill()
		}
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", o.name, p.Log())
		}
	})
	return p
}

// cluster is a JobManager and TaskManagers, each its own process.
type cluster struct {
	t        *testing.T
	restURL  string
	rpcPort  int
	jm       *proc
	tms      []*proc
	defines  []string
	baseArgs []string
	spec     clusterSpec
	blobPort int
	restURLs map[string]string // REST listener name -> URL, from the JobManager's log
	// client, when set, makes get's requests (a REST listener with TLS); cliArgs are added to
	// every sluice command (the CLI's trust store for it).
	client  *http.Client
	cliArgs []string
}

// startCluster starts a JobManager and n TaskManagers of `slots` slots with
// the given extra -D settings, and waits until every TM has registered.
func startCluster(t *testing.T, n, slots int, defines ...string) *cluster {
	t.Helper()
	return startClusterWith(t, clusterSpec{n: n, slots: slots, defines: defines})
}

// clusterSpec describes a cluster with per-process settings.
type clusterSpec struct {
	n, slots int
	defines  []string             // every process
	jm       []string             // the JobManager only
	tm       func(i int) []string // TaskManager i (1-based) only
	// restTrust, when set, is the PEM trust store of a REST API served over HTTPS: the
	// test's requests and the CLI trust it.
	restTrust string
}

func defineArgs(ds []string) []string {
	var out []string
	for _, d := range ds {
		out = append(out, "-D", d)
	}
	return out
}

func startClusterWith(t *testing.T, spec clusterSpec) *cluster {
	t.Helper()
	n, slots, defines := spec.n, spec.slots, spec.defines
	c := &cluster{t: t, spec: spec}
	if spec.restTrust != "" {
		pem, err := os.ReadFile(spec.restTrust)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s: no certificate", spec.restTrust)
		}
		c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		c.cliArgs = []string{"-D", "security.ssl.rest.enabled=true", "-D", "security.ssl.rest.truststore=" + spec.restTrust}
	}
	// The JobManager binds port 0 and the test reads the ports it got from
	// its log: a port the test picked and closed could be taken by another
	// connection before the JobManager binds it.
	c.defines = append([]string{
		"jobmanager.rpc.address=127.0.0.1", "jobmanager.bind-host=127.0.0.1",
		"jobmanager.rpc.port=0", "rest.bind-address=127.0.0.1", "rest.port=0",
		"taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1",
		fmt.Sprintf("taskmanager.numberOfTaskSlots=%d", slots),
	}, defines...)
	c.jm = startProc(t, "jobmanager", append(append([]string{"jobmanager", "--work-dir", t.TempDir()}, defineArgs(c.defines)...), defineArgs(spec.jm)...)...)
	c.waitJMStarted()
	c.restURL = c.restURLs["default"]
	for i := 0; i < n; i++ {
		c.addTM()
	}
	c.waitFor(30*time.Second, "taskmanagers registered", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && int(o["taskmanagers"].(float64)) == n
	})
	return c
}

var (
	jmStartedRE = regexp.MustCompile(`msg="jobmanager started".* rpc=\S+:(\d+) blob=\S+:(\d+)`)
	restWarnRE  = regexp.MustCompile(`REST listener \\"([a-z0-9-]+)\\" is NOT secured.* url=(\S+)`)
	restInfoRE  = regexp.MustCompile(`msg="REST listener" .*listener=([a-z0-9-]+) url=(\S+)`)
)

// waitJMStarted waits for the JobManager's start-up lines and records the
// ports it bound, and sets the TaskManagers' arguments to reach it.
func (c *cluster) waitJMStarted() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		log := c.jm.Log()
		if m := jmStartedRE.FindStringSubmatch(log); m != nil {
			fmt.Sscan(m[1], &c.rpcPort)
			fmt.Sscan(m[2], &c.blobPort)
			c.restURLs = map[string]string{}
			for _, re := range []*regexp.Regexp{restWarnRE, restInfoRE} {
				for _, m := range re.FindAllStringSubmatch(log, -1) {
					c.restURLs[m[1]] = m[2]
				}
			}
			break
		}
		select {
		case <-c.jm.done:
			c.t.Fatalf("the JobManager exited:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the JobManager did not start within 30s:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.baseArgs = defineArgs(append(append([]string{}, c.defines...), fmt.Sprintf("jobmanager.rpc.port=%d", c.rpcPort)))
}

// port returns the port of a URL such as https://[::]:8443.
func port(url string) string {
	i := strings.LastIndex(url, ":")
	return strings.TrimRight(url[i+1:], "/")
}

func (c *cluster) addTM() *proc {
	i := len(c.tms) + 1
	args := append([]string{"taskmanager", "--id", fmt.Sprintf("tm-%d", i), "--work-dir", c.t.TempDir()}, c.baseArgs...)
	if c.spec.tm != nil {
		args = append(args, defineArgs(c.spec.tm(i))...)
	}
	p := startProc(c.t, fmt.Sprintf("taskmanager-%d", i), args...)
	c.tms = append(c.tms, p)
	return p
}

func (c *cluster) get(path string, out any) error {
	client := c.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(c.restURL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, data)
	}
	return json.Unmarshal(data, out)
}

func (c *cluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// sluice runs the CLI against the cluster and returns stdout, stderr and the
// exit code.
func (c *cluster) sluice(ctx context.Context, args ...string) (string, string, int) {
	c.t.Helper()
	return runSluice(ctx, c.t, append(append(args, "--jobmanager", c.restURL), c.cliArgs...)...)
}

func runSluice(ctx context.Context, t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run sluice %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

func (c *cluster) job(id string) map[string]any {
	c.t.Helper()
	var j map[string]any
	if err := c.get("/jobs/"+id, &j); err != nil {
		c.t.Fatal(err)
	}
	return j
}

func (c *cluster) jobState(id string) string {
	s, _ := c.job(id)["state"].(string)
	return s
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
