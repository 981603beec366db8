package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/blob"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/transport"
)

// argAfter returns the argument after flag in a process's command line.
func argAfter(p *proc, flag string) string {
	for i, a := range p.cmd.Args {
		if a == flag && i+1 < len(p.cmd.Args) {
			return p.cmd.Args[i+1]
		}
	}
	return ""
}

// blobKeys lists the blobs in a blob directory.
func blobKeys(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if blob.ValidKey(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func hasBlob(t *testing.T, dir, key string) bool {
	t.Helper()
	for _, k := range blobKeys(t, dir) {
		if k == key {
			return true
		}
	}
	return false
}

// overviewIDs returns the ids in /jobs/overview.
func (c *cluster) overviewIDs() map[string]string {
	c.t.Helper()
	var o struct {
		Jobs []struct {
			ID    string `json:"jid"`
			State string `json:"state"`
		} `json:"jobs"`
	}
	if err := c.get("/jobs/overview", &o); err != nil {
		c.t.Fatal(err)
	}
	ids := map[string]string{}
	for _, j := range o.Jobs {
		ids[j.ID] = j.State
	}
	return ids
}

func (c *cluster) status(path string) int {
	resp, err := http.Get(c.restURL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// runSpecDetached submits a wordcount spec (its bytes are the spec blob)
// and waits until the JobManager logs the job finished.
func runSpecDetached(t *testing.T, c *cluster, specFile string) string {
	t.Helper()
	input := writeSample(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", specFile, "--detached", "--param", "input="+input, "--param", "output="+filepath.Join(t.TempDir(), "out"))
	if code != 0 {
		t.Fatalf("submit %s: exit %d: %s", specFile, code, stderr)
	}
	return strings.TrimSpace(stdout)
}

func waitJobFinished(c *cluster, id string) {
	c.t.Helper()
	c.waitFor(time.Minute, "job "+id+" finished", func() bool {
		return logHas(c.jm, "job finished", id)
	})
}

// logHas reports whether p logged msg about job id.
func logHas(p *proc, msg, id string) bool {
	return regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `".* job=` + id + `\b`).MatchString(p.Log())
}

// specVariant writes a copy of the wordcount example that differs by a
// comment, so its spec blob is its own.
func specVariant(t *testing.T, tag string) (path, key string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/wordcount.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("\n# variant "+tag+"\n")...)
	path = filepath.Join(t.TempDir(), "wordcount-"+tag+".yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, blob.Key(data)
}

// TestJobStoreExpiration: with jobstore.expiration-time 2 (seconds, as
// Flink reads a bare number) a finished job disappears from the job list
// and the REST API (404), its spec blob from the JobManager's blob store,
// and the TaskManager deletes its cached copy once the job's tasks ended.
func TestJobStoreExpiration(t *testing.T) {
	c := startCluster(t, 1, 2, "jobstore.expiration-time=2")
	jmBlobs := filepath.Join(argAfter(c.jm, "--work-dir"), "blobs")
	tmBlobs := filepath.Join(argAfter(c.tms[0], "--work-dir"), "blobs")
	spec, key := specVariant(t, "expire")
	id := runSpecDetached(t, c, spec)
	if !hasBlob(t, jmBlobs, key) {
		t.Fatalf("the spec blob %s is not in %s after submission: %v", key, jmBlobs, blobKeys(t, jmBlobs))
	}
	waitJobFinished(c, id)
	c.waitFor(10*time.Second, "the TaskManager to delete its cached blobs of the ended job", func() bool {
		return len(blobKeys(t, tmBlobs)) == 0
	})
	c.waitFor(15*time.Second, "the finished job to leave /jobs/overview", func() bool {
		_, listed := c.overviewIDs()[id]
		return !listed
	})
	if code := c.status("/jobs/" + id); code != http.StatusNotFound {
		t.Errorf("GET /jobs/%s after expiry: %d, want 404", id, code)
	}
	c.waitFor(10*time.Second, "the expired job's blob to be deleted", func() bool { return !hasBlob(t, jmBlobs, key) })
	if !strings.Contains(c.jm.Log(), "jobstore.expiration-time") {
		t.Errorf("the JobManager does not log why the job was removed")
	}
}

// TestJobStoreMaxCapacity: with jobstore.max-capacity 1 the second finished
// job evicts the first, with the first's blob; the second's stays.
func TestJobStoreMaxCapacity(t *testing.T) {
	c := startCluster(t, 1, 2, "jobstore.max-capacity=1")
	jmBlobs := filepath.Join(argAfter(c.jm, "--work-dir"), "blobs")
	specA, keyA := specVariant(t, "a")
	specB, keyB := specVariant(t, "b")
	a := runSpecDetached(t, c, specA)
	waitJobFinished(c, a)
	if _, ok := c.overviewIDs()[a]; !ok {
		t.Fatalf("job %s is not listed after it finished (capacity 1 holds it)", a)
	}
	b := runSpecDetached(t, c, specB)
	waitJobFinished(c, b)
	c.waitFor(10*time.Second, "the first job to be evicted", func() bool {
		ids := c.overviewIDs()
		_, hasA := ids[a]
		_, hasB := ids[b]
		return !hasA && hasB
	})
	if code := c.status("/jobs/" + a); code != http.StatusNotFound {
		t.Errorf("GET /jobs/%s after eviction: %d, want 404", a, code)
	}
	c.waitFor(10*time.Second, "the evicted job's blob to be deleted", func() bool { return !hasBlob(t, jmBlobs, keyA) })
	if !hasBlob(t, jmBlobs, keyB) {
		t.Errorf("the kept job's blob was deleted")
	}
	if code := c.status("/jobs/" + b); code != http.StatusOK {
		t.Errorf("GET /jobs/%s (kept): %d", b, code)
	}
}

var joinTokenFileRE = regexp.MustCompile(`join-token-file=(\S+)`)

// TestJobManagerGracefulShutdown: SIGTERM to a JobManager in automatic TLS
// mode (its CA key in a temporary work directory) with a running job:
// the job is cancelled on the TaskManager, the log says "jobmanager
// stopped", the process exits 0 and leaves nothing in its TMPDIR.
func TestJobManagerGracefulShutdown(t *testing.T) {
	tmp := t.TempDir()
	c := &cluster{t: t}
	c.defines = []string{
		"jobmanager.rpc.address=127.0.0.1", "jobmanager.bind-host=127.0.0.1",
		"jobmanager.rpc.port=0", "rest.bind-address=127.0.0.1", "rest.port=0",
		"taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1",
		"taskmanager.numberOfTaskSlots=2", "security.ssl.internal.auto=true", "heartbeat.interval=500 ms",
	}
	c.jm = startProcEnv(t, "jobmanager", []string{"TMPDIR=" + tmp}, append([]string{"jobmanager"}, defineArgs(c.defines)...)...)
	c.waitJMStarted()
	c.restURL = c.restURLs["default"]
	m := joinTokenFileRE.FindStringSubmatch(c.jm.Log())
	if m == nil {
		t.Fatal("the JobManager does not log its join token file")
	}
	tokenFile := strings.Trim(m[1], `"`)
	if !strings.HasPrefix(tokenFile, tmp) {
		t.Fatalf("the automatic CA is not under the temporary directory %s: %s", tmp, tokenFile)
	}
	workDirs, _ := filepath.Glob(filepath.Join(tmp, "sluice-jm-*"))
	if len(workDirs) != 1 {
		t.Fatalf("want one temporary work directory in %s, have %v", tmp, workDirs)
	}
	if _, err := os.Stat(filepath.Join(workDirs[0], "cluster-ca")); err != nil {
		t.Fatalf("the temporary work directory holds no cluster CA: %v", err)
	}
	// The TaskManager, without --work-dir, uses a temporary directory too.
	tmTmp := t.TempDir()
	tm := startProcEnv(t, "taskmanager-1", []string{"TMPDIR=" + tmTmp}, append([]string{"taskmanager", "--id", "tm-1"},
		defineArgs(append(append([]string{}, c.defines...), fmt.Sprintf("jobmanager.rpc.port=%d", c.rpcPort), "security.cluster.join-token-file="+tokenFile))...)...)
	c.tms = append(c.tms, tm)
	c.waitFor(30*time.Second, "taskmanager registered", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && int(o["taskmanagers"].(float64)) == 1
	})
	id := submitUnbounded(t, c, "1", "100")

	c.jm.Signal(syscall.SIGTERM)
	if code := waitExit(t, c.jm, 30*time.Second); code != 0 {
		t.Errorf("the JobManager exited %d after SIGTERM, want 0", code)
	}
	log := c.jm.Log()
	if !strings.Contains(log, `msg="jobmanager stopped"`) {
		t.Errorf(`the JobManager log lacks "jobmanager stopped"`)
	}
	if !logHas(c.jm, "job canceled", id) {
		t.Errorf("the JobManager log does not say job %s was canceled", id)
	}
	left, _ := os.ReadDir(tmp)
	for _, e := range left {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
	c.waitFor(10*time.Second, "the TaskManager to cancel the job's tasks", func() bool {
		return logHas(tm, "tasks cancelled", id)
	})
	if dirs, _ := filepath.Glob(filepath.Join(tmTmp, "sluice-tm-*")); len(dirs) != 1 {
		t.Errorf("want one temporary TaskManager work directory, have %v", dirs)
	}
	tm.Signal(syscall.SIGTERM)
	waitExit(t, tm, 30*time.Second)
	left, _ = os.ReadDir(tmTmp)
	for _, e := range left {
		t.Errorf("the TaskManager left behind in TMPDIR: %s", e.Name())
	}
}

// tmClient is a blob client with TaskManager tmID's certificate, built as
// a TaskManager builds its own; claim is the id it sends in the request.
func tmClient(t *testing.T, dir, tmID, claim string) *blob.Cache {
	t.Helper()
	cfg := config.New()
	for k, v := range map[string]string{
		"security.ssl.internal.enabled":    "true",
		"security.ssl.internal.keystore":   filepath.Join(dir, "taskmanager-"+tmID+".pem"),
		"security.ssl.internal.truststore": filepath.Join(dir, "truststore.pem"),
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sec, err := internaltls.SetupTaskManager(ctx, cfg, slog.New(slog.DiscardHandler), tmID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := blob.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return blob.NewCache(store, sec.Security.HTTPClient(transport.Blob, 30*time.Second), claim)
}

// TestBlobFetchOnlyForDeployedJobs: a TaskManager may fetch a job's blobs
// only while a task of the job is deployed on it. With per-process
// certificates, tm-2 is refused the spec of a job running only on tm-1
// (also when it claims to be tm-1), tm-1 gets it, and after the job is
// cancelled tm-1 is refused too.
func TestBlobFetchOnlyForDeployedJobs(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 1, "heartbeat.interval=500 ms"))
	id := submitUnbounded(t, c, "1", "100")
	// tm-2 joins after the job was placed: none of its tasks are there.
	c.addTM()
	c.waitFor(30*time.Second, "tm-2 registered", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && int(o["taskmanagers"].(float64)) == 2
	})
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/unbounded.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	key := blob.Key(data)
	if !hasBlob(t, filepath.Join(argAfter(c.jm, "--work-dir"), "blobs"), key) {
		t.Fatalf("the job's spec blob %s is not in the JobManager's store", key)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", c.blobPort)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := tmClient(t, dir, "tm-2", "tm-2").Fetch(ctx, "probe", addr, key); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "runs no task of a job that uses blob") {
		t.Errorf("tm-2 fetching the blob of a job it does not run: want 403 naming the reason, got %v", err)
	}
	if _, err := tmClient(t, dir, "tm-2", "tm-1").Fetch(ctx, "probe", addr, key); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "certificate is spiffe://c1/taskmanager/tm-2") {
		t.Errorf("tm-2 claiming to be tm-1: want 403 naming the certificate, got %v", err)
	}
	if _, err := tmClient(t, dir, "tm-1", "tm-1").Fetch(ctx, "probe", addr, key); err != nil {
		t.Errorf("tm-1, which runs the job, is refused its blob: %v", err)
	}
	if !strings.Contains(c.jm.Log(), "blob fetch refused") {
		t.Errorf("the JobManager does not log the refused fetches")
	}

	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
	c.waitFor(30*time.Second, "job canceled", func() bool { return c.jobState(id) == "CANCELED" })
	if _, err := tmClient(t, dir, "tm-1", "tm-1").Fetch(ctx, "probe", addr, key); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("tm-1 fetching the blob of a job whose tasks ended: want 403, got %v", err)
	}
}

var metricsBindRE = regexp.MustCompile(`metrics-bind=(\S+):(\d+)`)

// metricsBind waits for a TaskManager's start line and returns the host
// and port its /metrics is bound to.
func metricsBind(t *testing.T, p *proc) (host, port string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := metricsBindRE.FindStringSubmatch(p.Log()); m != nil {
			return m[1], m[2]
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", p.name, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not log its metrics address:\n%s", p.name, p.Log())
	return "", ""
}

// listeners returns the local addresses (hex, as in /proc/net/tcp) of the
// sockets listening on port.
func listeners(t *testing.T, port string) []string {
	t.Helper()
	var n int
	fmt.Sscan(port, &n)
	suffix := fmt.Sprintf(":%04X", n)
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 3 && fs[3] == "0A" && strings.HasSuffix(fs[1], suffix) {
				out = append(out, fs[1])
			}
		}
	}
	return out
}

// TestTaskManagerMetricsLoopbackDefault: with every other TaskManager
// port on all interfaces, /metrics still binds loopback only.
func TestTaskManagerMetricsLoopbackDefault(t *testing.T) {
	c := startClusterWith(t, clusterSpec{n: 1, slots: 1, tm: func(int) []string { return []string{"taskmanager.bind-host=0.0.0.0"} }})
	host, port := metricsBind(t, c.tms[0])
	if host != "127.0.0.1" {
		t.Errorf("metrics bound to %s, want 127.0.0.1", host)
	}
	ls := listeners(t, port)
	if len(ls) != 1 || ls[0] != fmt.Sprintf("0100007F:%04X", mustAtoi(port)) {
		t.Errorf("listening sockets on the metrics port %s: %v, want 127.0.0.1 only", port, ls)
	}
	if body := httpGet(t, "http://127.0.0.1:"+port+"/metrics"); !strings.Contains(body, "sluice_taskmanager_tasks") {
		t.Errorf("loopback metrics: %.200s", body)
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestTaskManagerMetricsOffLoopback: bound off loopback, /metrics needs TLS
// and a credential. Without the configuration the TaskManager refuses to
// start naming the keys; with it plain HTTP is refused, no credential is
// 401, and a client certificate or a bearer token gets the metrics.
func TestTaskManagerMetricsOffLoopback(t *testing.T) {
	p := startProc(t, "taskmanager-open", "taskmanager", "--id", "tm-open", "--work-dir", t.TempDir(),
		"-D", "taskmanager.metrics.bind-host=0.0.0.0", "-D", "taskmanager.bind-host=127.0.0.1", "-D", "jobmanager.rpc.port=1")
	if code := waitExit(t, p, 30*time.Second); code == 0 {
		t.Fatalf("a TaskManager with open metrics and no TLS started")
	}
	for _, want := range []string{"taskmanager.metrics.bind-host", "security.ssl.rest.enabled", "security.ssl.rest.keystore", "security.rest.authentication.token.file"} {
		if !strings.Contains(p.Log(), want) {
			t.Errorf("the start-up error does not name %s:\n%s", want, p.Log())
		}
	}

	dir := createCertsHosts(t, "localhost")
	caFile := filepath.Join(dir, "ca.crt")
	tokens := filepath.Join(t.TempDir(), "tokens")
	token := newToken(t, tokens, "prometheus", "monitoring")
	crt, key := loadPKI(t, dir).issueUser(t, t.TempDir(), "scraper", pkix.Name{CommonName: "scraper"})
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	certAuth := []string{"-D", "security.ssl.rest.truststore=" + caFile, "-D", "security.ssl.rest.authentication-enabled=true"}
	tokenAuth := []string{"-D", "security.rest.authentication.token.file=" + tokens}
	for i, tc := range []struct {
		name            string
		auth            []string
		certOK, tokenOK bool
	}{
		{"certificate and token", append(append([]string{}, certAuth...), tokenAuth...), true, true},
		{"certificate only", certAuth, true, false},
		{"token only", tokenAuth, false, true},
	} {
		args := append([]string{"taskmanager", "--id", fmt.Sprintf("tm-%d", i+1), "--work-dir", t.TempDir(),
			"-D", "taskmanager.metrics.bind-host=0.0.0.0", "-D", "taskmanager.bind-host=127.0.0.1", "-D", "jobmanager.rpc.port=1",
			"-D", "security.ssl.rest.enabled=true", "-D", "security.ssl.rest.keystore=" + filepath.Join(dir, "rest.pem")}, tc.auth...)
		tm := startProc(t, "taskmanager-"+tc.name, args...)
		_, port := metricsBind(t, tm)
		url := "https://localhost:" + port + "/metrics"
		get := func(certs []tls.Certificate, bearer string) (int, string) {
			t.Helper()
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
			req, _ := http.NewRequest("GET", url, nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatalf("%s: GET %s: %v", tc.name, url, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		want := func(ok bool) int {
			if ok {
				return http.StatusOK
			}
			return http.StatusUnauthorized
		}
		if code, body := get(nil, ""); code != http.StatusUnauthorized || strings.Contains(body, "sluice_") {
			t.Errorf("%s: no credential: %d %.200s, want 401", tc.name, code, body)
		}
		if code, body := get(nil, "not-a-token"); code != http.StatusUnauthorized {
			t.Errorf("%s: a wrong token: %d %.200s, want 401", tc.name, code, body)
		}
		if code, body := get([]tls.Certificate{clientCert}, ""); code != want(tc.certOK) || (tc.certOK != strings.Contains(body, "sluice_taskmanager_tasks")) {
			t.Errorf("%s: client certificate: %d %.200s, want %d", tc.name, code, body, want(tc.certOK))
		}
		if code, body := get(nil, token); code != want(tc.tokenOK) || (tc.tokenOK != strings.Contains(body, "sluice_taskmanager_tasks")) {
			t.Errorf("%s: bearer token: %d %.200s, want %d", tc.name, code, body, want(tc.tokenOK))
		}
		// Plain HTTP gets no metrics.
		resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 || strings.Contains(string(b), "sluice_") {
				t.Errorf("%s: plain HTTP got metrics: %d %.200s", tc.name, resp.StatusCode, b)
			}
		}
	}

	// TLS without any authenticator is refused off loopback too.
	p = startProc(t, "taskmanager-tls-only", "taskmanager", "--id", "tm-tls", "--work-dir", t.TempDir(),
		"-D", "taskmanager.metrics.bind-host=0.0.0.0", "-D", "taskmanager.bind-host=127.0.0.1", "-D", "jobmanager.rpc.port=1",
		"-D", "security.ssl.rest.enabled=true", "-D", "security.ssl.rest.keystore="+filepath.Join(dir, "rest.pem"))
	if code := waitExit(t, p, 30*time.Second); code == 0 {
		t.Fatalf("a TaskManager with TLS but no authentication on its open metrics started")
	}
	for _, want := range []string{"taskmanager.metrics.bind-host", "security.ssl.rest.authentication-enabled", "security.rest.authentication.token.file"} {
		if !strings.Contains(p.Log(), want) {
			t.Errorf("the start-up error does not name %s:\n%s", want, p.Log())
		}
	}
}

// TestJobManagerShutdownLeavesJobs: with jobmanager.shutdown.cancel-jobs
// false the JobManager stops without cancelling, and the TaskManager
// cancels the orphaned tasks itself once it has lost the JobManager.
func TestJobManagerShutdownLeavesJobs(t *testing.T) {
	c := startCluster(t, 1, 2, "heartbeat.interval=500 ms", "heartbeat.timeout=3 s", "jobmanager.shutdown.cancel-jobs=false")
	id := submitUnbounded(t, c, "1", "100")
	c.jm.Signal(syscall.SIGTERM)
	if code := waitExit(t, c.jm, 30*time.Second); code != 0 {
		t.Errorf("the JobManager exited %d after SIGTERM, want 0", code)
	}
	log := c.jm.Log()
	if !strings.Contains(log, "leaving running jobs to the taskmanagers") || !strings.Contains(log, `msg="jobmanager stopped"`) {
		t.Errorf("the JobManager does not say it leaves the jobs, or that it stopped")
	}
	if logHas(c.jm, "job canceled", id) {
		t.Errorf("the JobManager cancelled job %s although jobmanager.shutdown.cancel-jobs is false", id)
	}
	_, port := metricsBind(t, c.tms[0])
	if body := httpGet(t, "http://127.0.0.1:"+port+"/metrics"); !strings.Contains(body, `job_id="`+id+`"`) {
		t.Fatalf("the TaskManager does not run job %s after the JobManager stopped", id)
	}
	c.waitFor(30*time.Second, "the TaskManager to cancel the orphaned tasks", func() bool {
		return strings.Contains(c.tms[0].Log(), "jobmanager lost") &&
			strings.Contains(httpGet(t, "http://127.0.0.1:"+port+"/metrics"), "sluice_taskmanager_tasks 0")
	})
}
