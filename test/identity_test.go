package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Identity and registration of TaskManagers (issue 9 defects 3 and 6,
// issue 10 points 1 and 4): a live TaskManager's id cannot be taken over,
// whatever the newcomer authenticates with; join tokens are bounded-use,
// recorded, rotated and a TaskManager can be revoked; one shared
// TaskManager certificate serves many TaskManagers; a TaskManager that
// cannot register says why and exits; short certificate lifetimes do not
// loop.

// waitExit waits for a process to exit and returns its exit code.
func waitExit(t *testing.T, p *proc, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s:\n%s", p.name, timeout, p.Log())
		return 0
	}
}

// taskManagerIDs returns the ids of the registered TaskManagers.
func taskManagerIDs(c *cluster) []string {
	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		c.t.Fatal(err)
	}
	var ids []string
	for _, tm := range tms["taskmanagers"] {
		ids = append(ids, tm["id"].(string))
	}
	return ids
}

// startTM starts a TaskManager against the cluster's JobManager with the
// given arguments (no --id unless given).
func (c *cluster) startTM(name string, args ...string) *proc {
	c.t.Helper()
	all := append([]string{"taskmanager", "--work-dir", c.t.TempDir()}, c.baseArgs...)
	if c.spec.tm != nil {
		all = append(all, defineArgs(c.spec.tm(0))...)
	}
	return startProc(c.t, name, append(all, args...)...)
}

// autoCluster is a JobManager in automatic mode with its CA in a known
// directory; TaskManagers join with the token file unless told otherwise.
func autoCluster(t *testing.T, n int, defines ...string) (*cluster, string) {
	t.Helper()
	caDir := filepath.Join(t.TempDir(), "ca")
	c := startClusterWith(t, clusterSpec{
		n: n, slots: 2,
		defines: append([]string{"heartbeat.interval=500 ms", "heartbeat.timeout=4 s", "taskmanager.registration.timeout=6 s"}, defines...),
		jm:      []string{"security.ssl.internal.auto=true", "security.ssl.internal.auto.dir=" + caDir},
		tm: func(int) []string {
			return []string{"security.ssl.internal.auto=true", "security.cluster.join-token-file=" + filepath.Join(caDir, "join-token")}
		},
	})
	return c, caDir
}

// TestIdentityTakeoverRefused is the reproduction: a second
// `sluice taskmanager --id victim --join-token T` while the victim runs.
// The second is refused (at the join and, whatever certificate it holds,
// at registration) and exits non-zero naming the id; the victim keeps its
// registration and its job keeps running.
func TestIdentityTakeoverRefused(t *testing.T) {
	// Unbounded tokens, so that the refusal comes from the live-id check
	// and not from the token being used up.
	c, caDir := autoCluster(t, 0, "security.ssl.internal.auto.join-token.max-uses=0")
	tokenFile := filepath.Join(caDir, "join-token")
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	victim := c.startTM("victim", "--id", "victim", "--join-token", strings.TrimSpace(string(token)))
	c.tms = append(c.tms, victim)
	c.waitFor(30*time.Second, "victim registered", func() bool { return strings.Join(taskManagerIDs(c), ",") == "victim" })
	job := submitUnbounded(t, c, "2", "200")

	thief := c.startTM("thief", "--id", "victim", "--join-token", strings.TrimSpace(string(token)))
	if code := waitExit(t, thief, 30*time.Second); code == 0 {
		t.Fatalf("the second TaskManager with a live id exited 0:\n%s", thief.Log())
	}
	for _, want := range []string{`taskmanager id \"victim\" is already registered by a live TaskManager`, "--id"} {
		if !strings.Contains(thief.Log(), want) {
			t.Errorf("the refused TaskManager's log lacks %q:\n%s", want, thief.Log())
		}
	}
	if !strings.Contains(c.jm.Log(), "join refused: taskmanager id already live") {
		t.Errorf("the JobManager did not log the refused join:\n%s", c.jm.Log())
	}
	if ids := taskManagerIDs(c); strings.Join(ids, ",") != "victim" {
		t.Fatalf("registered TaskManagers %v, want [victim]", ids)
	}
	j := c.job(job)
	if j["state"] != "RUNNING" || j["restarts"].(float64) != 0 {
		t.Fatalf("the victim's job is %v after %v restarts, want RUNNING without restart", j["state"], j["restarts"])
	}
	if strings.Contains(victim.Log(), "no longer knows this taskmanager") {
		t.Errorf("the victim lost its registration:\n%s", victim.Log())
	}
}

// TestJoinTokenSingleUse: by default a token admits one join; the
// JobManager records which token issued which id; new-join-token rotates
// the token without a restart, and the old one stops working.
func TestJoinTokenSingleUse(t *testing.T) {
	c, caDir := autoCluster(t, 1)
	tokenFile := filepath.Join(caDir, "join-token")
	old, _ := os.ReadFile(tokenFile)

	second := c.startTM("second", "--id", "tm-2")
	if code := waitExit(t, second, 30*time.Second); code == 0 {
		t.Fatalf("a second join with a single-use token succeeded:\n%s", second.Log())
	}
	if !strings.Contains(second.Log(), "used up") || !strings.Contains(second.Log(), "join-token.max-uses") {
		t.Errorf("the refusal does not say the token is used up and name the key:\n%s", second.Log())
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "security", "new-join-token")
	if code != 0 {
		t.Fatalf("new-join-token: exit %d: %s %s", code, stdout, stderr)
	}
	fresh := strings.TrimSpace(stdout)
	if !strings.HasPrefix(fresh, "sljt1.") || fresh == strings.TrimSpace(string(old)) {
		t.Fatalf("new-join-token printed %q", fresh)
	}
	if onDisk, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(onDisk)) != fresh {
		t.Errorf("the JobManager's join-token file does not hold the new token")
	}
	// The rotated-out token is refused, for a new id too.
	stale := c.startTM("stale", "--id", "tm-3", "--join-token", strings.TrimSpace(string(old)))
	if code := waitExit(t, stale, 30*time.Second); code == 0 || !strings.Contains(stale.Log(), "unknown join token") {
		t.Fatalf("the rotated-out token was not refused as unknown (exit %d):\n%s", code, stale.Log())
	}
	third := c.startTM("third", "--id", "tm-2", "--join-token", fresh)
	c.tms = append(c.tms, third)
	c.waitFor(30*time.Second, "tm-2 registered with the new token", func() bool { return len(taskManagerIDs(c)) == 2 })

	// Which token issued which id.
	var list struct {
		Tokens []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
			Issued []struct {
				TaskManager string `json:"taskmanager"`
				Serial      string `json:"serial"`
			} `json:"issued"`
		} `json:"join-tokens"`
	}
	if err := c.get("/admin/join-tokens", &list); err != nil {
		t.Fatal(err)
	}
	issued := map[string]string{}
	for _, tk := range list.Tokens {
		for _, is := range tk.Issued {
			issued[is.TaskManager] = tk.ID
		}
		if strings.Contains(fresh, tk.ID) != tk.Active {
			t.Errorf("token %s active=%v", tk.ID, tk.Active)
		}
	}
	if !strings.Contains(string(old), "."+issued["tm-1"]+".") || !strings.Contains(fresh, "."+issued["tm-2"]+".") || len(issued) != 2 {
		t.Errorf("issued ids by token: %v", issued)
	}
	reg, err := os.ReadFile(filepath.Join(caDir, "registry.json"))
	if err != nil || !strings.Contains(string(reg), `"taskmanager": "tm-2"`) {
		t.Errorf("registry.json in the CA directory does not record tm-2 (%v):\n%s", err, reg)
	}
	for _, s := range []string{fresh, strings.TrimSpace(string(old))} {
		secret := strings.Split(s, ".")[2]
		if strings.Contains(string(reg), secret) || strings.Contains(c.jm.Log(), secret) {
			t.Errorf("a token secret is in registry.json or the JobManager's log")
		}
	}
}

// TestRevokeTaskManager: a revoked TaskManager's registration is dropped,
// its tasks fail over, and it can neither heartbeat nor register again: it
// exits non-zero saying it was revoked.
func TestRevokeTaskManager(t *testing.T) {
	t.Parallel()
	c, _ := autoCluster(t, 2, "security.ssl.internal.auto.join-token.max-uses=0",
		"restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=3", "restart-strategy.fixed-delay.delay=500 ms")
	job := submitUnbounded(t, c, "2", "200")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "security", "revoke-taskmanager", "tm-2")
	if code != 0 || !strings.Contains(stdout, "taskmanager tm-2 revoked") {
		t.Fatalf("revoke-taskmanager: exit %d: %s %s", code, stdout, stderr)
	}
	if ids := taskManagerIDs(c); strings.Join(ids, ",") != "tm-1" {
		t.Errorf("after revocation the TaskManagers are %v, want [tm-1]", ids)
	}
	if code := waitExit(t, c.tms[1], 45*time.Second); code == 0 {
		t.Fatalf("the revoked TaskManager exited 0:\n%s", c.tms[1].Log())
	}
	if !strings.Contains(c.tms[1].Log(), "revoked") {
		t.Errorf("the revoked TaskManager does not say it was revoked:\n%s", c.tms[1].Log())
	}
	if ids := taskManagerIDs(c); strings.Join(ids, ",") != "tm-1" {
		t.Errorf("the revoked TaskManager came back: %v", ids)
	}
	c.waitFor(30*time.Second, "the job failed over to tm-1", func() bool {
		j := c.job(job)
		return j["state"] == "RUNNING" && j["restarts"].(float64) >= 1
	})
	// Unknown ids are a clear 404, not a silent success.
	_, stderr, code = c.sluice(ctx, "security", "revoke-taskmanager", "nope")
	if code == 0 || !strings.Contains(stderr, "no certificate known") {
		t.Errorf("revoking an unknown id: exit %d, %s", code, stderr)
	}
}

// TestSharedTaskManagerCertificate is issue 10's "must show": create-certs
// with no flags, a JobManager and three TaskManagers using the one
// taskmanager.pem and no --id, each registered under a distinct id, a -p 6
// job correct. A fourth with the id of a live one is refused with a clear
// error on both sides.
func TestSharedTaskManagerCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, stderr, code := runSluice(ctx, t, "security", "create-certs", "--out", dir); code != 0 {
		t.Fatalf("create-certs: %s %s", out, stderr)
	}
	c := startClusterWith(t, clusterSpec{
		n: 0, slots: 2,
		defines: []string{"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + filepath.Join(dir, "truststore.pem"),
			"taskmanager.registration.timeout=5 s"},
		jm: []string{"security.ssl.internal.keystore=" + filepath.Join(dir, "jobmanager.pem")},
	})
	shared := "security.ssl.internal.keystore=" + filepath.Join(dir, "taskmanager.pem")
	for i := 1; i <= 3; i++ {
		c.tms = append(c.tms, c.startTM(fmt.Sprintf("taskmanager-%d", i), "-D", shared))
	}
	c.waitFor(30*time.Second, "three taskmanagers registered", func() bool { return len(taskManagerIDs(c)) == 3 })
	ids := taskManagerIDs(c)
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Fatalf("ids not distinct: %v", ids)
	}
	runWordcount(t, c, "6")

	dup := c.startTM("duplicate", "-D", shared, "--id", ids[0])
	if code := waitExit(t, dup, 30*time.Second); code == 0 {
		t.Fatalf("a TaskManager with a live id exited 0:\n%s", dup.Log())
	}
	want := fmt.Sprintf(`taskmanager id \"%s\" is already registered by a live TaskManager`, ids[0])
	if !strings.Contains(dup.Log(), want) || !strings.Contains(dup.Log(), "taskmanager.registration.timeout") {
		t.Errorf("the refused TaskManager's log lacks %q and the timeout:\n%s", want, dup.Log())
	}
	if !strings.Contains(c.jm.Log(), "registration refused: taskmanager id already live") {
		t.Errorf("the JobManager says nothing about the refused registration:\n%s", c.jm.Log())
	}
	if got := taskManagerIDs(c); len(got) != 3 {
		t.Errorf("after the refusal: %v", got)
	}
}

// TestTaskManagerIDFromCertificate: a TaskManager with its own certificate
// and no --id takes the id from the certificate; an --id that contradicts
// the certificate is a start-up error naming both, not an endless retry.
func TestTaskManagerIDFromCertificate(t *testing.T) {
	dir := createCerts(t, "c1", "tm-a")
	c := startClusterWith(t, clusterSpec{
		n: 0, slots: 2,
		defines: []string{"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + filepath.Join(dir, "truststore.pem")},
		jm:      []string{"security.ssl.internal.keystore=" + filepath.Join(dir, "jobmanager.pem")},
	})
	own := "security.ssl.internal.keystore=" + filepath.Join(dir, "taskmanager-tm-a.pem")
	c.tms = append(c.tms, c.startTM("tm-a", "-D", own))
	c.waitFor(30*time.Second, "tm-a registered", func() bool { return strings.Join(taskManagerIDs(c), ",") == "tm-a" })
	wrong := c.startTM("wrong", "-D", own, "--id", "tm-b")
	if code := waitExit(t, wrong, 30*time.Second); code == 0 || !strings.Contains(wrong.Log(), `taskmanager \"tm-a\"'s`) && !strings.Contains(wrong.Log(), `taskmanager "tm-a"'s`) {
		t.Fatalf("a contradicting --id: exit %d:\n%s", code, wrong.Log())
	}
}

// TestPlaintextTaskManagerAgainstTLS: a TaskManager without TLS against a
// JobManager with it names the likely cause and the key to set, and exits
// non-zero after taskmanager.registration.timeout instead of retrying
// forever.
func TestPlaintextTaskManagerAgainstTLS(t *testing.T) {
	dir := createCerts(t, "c1")
	c := startClusterWith(t, clusterSpec{
		n: 0, slots: 2,
		jm: []string{"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + filepath.Join(dir, "truststore.pem"),
			"security.ssl.internal.keystore=" + filepath.Join(dir, "jobmanager.pem")},
	})
	start := time.Now()
	tm := c.startTM("plaintext", "-D", "taskmanager.registration.timeout=3 s")
	if code := waitExit(t, tm, 40*time.Second); code == 0 {
		t.Fatalf("exit 0:\n%s", tm.Log())
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("gave up after %s, before taskmanager.registration.timeout", took)
	}
	for _, want := range []string{"requires TLS", "security.ssl.internal.enabled", "taskmanager.registration.timeout"} {
		if !strings.Contains(tm.Log(), want) {
			t.Errorf("the TaskManager's log lacks %q:\n%s", want, tm.Log())
		}
	}
}

// TestShortCertTTL: a certificate lifetime below what renewal can serve is
// a start-up error naming the key; at the minimum the JobManager serves a
// job without renewing in a loop.
func TestShortCertTTL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, stderr, code := runSluice(ctx, t, "jobmanager", "--work-dir", t.TempDir(), "-D", "security.ssl.internal.auto=true",
		"-D", "security.ssl.internal.auto.cert-ttl=60 s", "-D", "rest.port=0", "-D", "jobmanager.rpc.port=0")
	if code == 0 || !strings.Contains(stderr, "security.ssl.internal.auto.cert-ttl") {
		t.Fatalf("cert-ttl 60 s: exit %d, stderr:\n%.2000s", code, stderr)
	}

	c, _ := autoCluster(t, 2, "security.ssl.internal.auto.cert-ttl=5 min", "security.ssl.internal.auto.join-token.max-uses=0")
	runWordcount(t, c, "4")
	log := c.jm.Log()
	if n := strings.Count(log, "certificate renewed"); n > 0 {
		t.Errorf("the JobManager renewed certificates %d times within a job at cert-ttl 5 min", n)
	}
	if len(log) > 200<<10 {
		t.Errorf("the JobManager's log grew to %d bytes", len(log))
	}
}

// TestIdentityAdminAuthorized: the identity admin endpoints need admin on
// cluster: a developer of the shipped ACL policy may neither create join
// tokens nor revoke a TaskManager; a super-user may (here the JobManager
// is not in automatic mode, so the token request is refused as such).
func TestIdentityAdminAuthorized(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(policy, data, 0o600)
	e := startRESTExample(t, "security.authorization.mode=acl", "security.authorization.acl.policy-file="+policy)
	tokens := authzTokens(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	as := func(user string, args ...string) (string, int) {
		_, stderr, code := runSluice(ctx, t, append(args, "--jobmanager", e.extURL, "--cacert", e.ca, "--token", tokens[user])...)
		return stderr, code
	}
	for _, args := range [][]string{{"security", "new-join-token"}, {"security", "revoke-taskmanager", "tm-1"}} {
		stderr, code := as("bob", args...)
		if code == 0 || !strings.Contains(stderr, "admin cluster") {
			t.Errorf("bob %v: exit %d, %s; want refused for admin on cluster", args, code, stderr)
		}
	}
	e.c.waitFor(10*time.Second, "tm-1 still registered", func() bool {
		return strings.Contains(e.c.jm.Log(), "taskmanager registered") && !strings.Contains(e.c.jm.Log(), "revoked")
	})
	if stderr, code := as("root", "security", "new-join-token"); code == 0 || !strings.Contains(stderr, "automatic mode") {
		t.Errorf("root new-join-token without automatic mode: exit %d, %s", code, stderr)
	}
}
