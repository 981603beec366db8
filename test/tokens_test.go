package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// rpcClient dials the JobManager's control plane with the given TLS config (nil: plaintext),
// as a process holding that certificate would.
func rpcClient(t *testing.T, c *cluster, conf *tls.Config) controlpb.JobManagerClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if conf != nil {
		creds = credentials.NewTLS(conf)
	}
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", c.rpcPort), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return controlpb.NewJobManagerClient(conn)
}

// certClient is rpcClient with the certificate in pem (a TaskManager's keystore).
func certClient(t *testing.T, c *cluster, pem string) controlpb.JobManagerClient {
	return rpcClient(t, c, &tls.Config{Certificates: []tls.Certificate{keyPair(t, pem)}, InsecureSkipVerify: true})
}

func fetchTokens(client controlpb.JobManagerClient, tm, job string) (*controlpb.FetchTokensResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.FetchTokens(ctx, &controlpb.FetchTokensRequest{TaskmanagerId: tm, JobIds: []string{job}})
}

// secretOf returns the secret of the service's token in a fetch answer.
func secretOf(t *testing.T, resp *controlpb.FetchTokensResponse, service string) (string, int64) {
	t.Helper()
	for _, s := range resp.GetSets() {
		for _, tk := range s.Tokens {
			if tk.Service == service {
				return tk.Secret, s.Version
			}
		}
	}
	t.Fatalf("no %s token in %v sets", service, len(resp.GetSets()))
	return "", 0
}

// workDirOf returns the --work-dir a process was started with.
func workDirOf(p *proc) string {
	for i, a := range p.cmd.Args {
		if a == "--work-dir" && i+1 < len(p.cmd.Args) {
			return p.cmd.Args[i+1]
		}
	}
	return ""
}

// assertNoSecretsOnTaskManagers checks that no TaskManager wrote any of the secrets to a file
// under its work directory or to its log, or has one in its environment, and that none runs
// with a keytab configured.
func assertNoSecretsOnTaskManagers(t *testing.T, c *cluster, secrets ...string) {
	t.Helper()
	for _, tm := range c.tms {
		dir := workDirOf(tm)
		if dir == "" {
			t.Fatalf("%s: no --work-dir", tm.name)
		}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(string(data), s) {
					t.Errorf("%s: %s holds a delegation token's secret", tm.name, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", tm.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if s != "" && (strings.Contains(tm.Log(), s) || strings.Contains(string(env), s)) {
				t.Errorf("%s: a delegation token's secret is in its log or environment", tm.name)
			}
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if strings.HasPrefix(kv, "KRB5_KTNAME=") || strings.HasPrefix(kv, "KRB5_CLIENT_KTNAME=") {
				t.Errorf("%s runs with a keytab in its environment: %s", tm.name, kv)
			}
		}
		for _, a := range tm.cmd.Args {
			if strings.Contains(a, "security.kerberos.login.keytab") || strings.Contains(a, "keytab=") {
				t.Errorf("%s was started with a keytab: %s", tm.name, a)
			}
		}
	}
}

// hostOf waits until a TaskManager logs that it received the job's tokens and returns its
// index in c.tms.
func hostOf(t *testing.T, c *cluster, job string, version int) int {
	t.Helper()
	re := regexp.MustCompile(`msg="delegation tokens received" .*job=` + job + ` version=` + fmt.Sprint(version) + `\b`)
	host := -1
	c.waitFor(60*time.Second, fmt.Sprintf("a taskmanager to receive version %d of job %s's tokens", version, job), func() bool {
		for i, tm := range c.tms {
			if re.MatchString(tm.Log()) {
				host = i
				return true
			}
		}
		return false
	})
	return host
}

func restStatus(t *testing.T, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDelegationTokensOnlyToTheirTaskManagers: a job's tokens (here the sluice provider's
// token for the REST API, renewed every 15 s) reach the TaskManager running the job over the
// control plane, renewals are pushed, and nobody else gets them: another TaskManager's
// certificate, a certificate of a TaskManager that is not registered, a TaskManager naming
// another, a plaintext or certificate-less client. The token views its own job and nothing
// else; it is dropped on the TaskManager and revoked when the job ends; no secret is left in
// the TaskManagers' work dirs, logs or environment.
func TestDelegationTokensOnlyToTheirTaskManagers(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2", "tm-3")
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	newToken(t, tokenFile, "alice", "eng")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 2,
		"heartbeat.interval=500 ms",
		"security.rest.authentication.token.file="+tokenFile,
		"rest.listeners=[{name: default, address: '127.0.0.1:0', authentication: [anonymous]}, {name: api, address: '127.0.0.1:0', authentication: [token]}]",
		"security.delegation.token.provider.sluice.lifetime=20 s",
		"security.delegation.tokens.renewal.retry.backoff=1 s"))
	api := c.restURLs["api"]
	if api == "" {
		t.Fatalf("no api listener in the JobManager's log:\n%s", c.jm.Log())
	}
	spec := filepath.Join(t.TempDir(), "job.yaml")
	job := fmt.Sprintf(unboundedJob, "tokens") + "config:\n  security.delegation.token.provider.sluice.enabled: true\n"
	if err := os.WriteFile(spec, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	id := runDetached(t, c, spec, "-p", "1")
	other := runDetached(t, c, writeSpec(t, fmt.Sprintf(unboundedJob, "no-tokens")), "-p", "1")
	h := hostOf(t, c, id, 1)
	o := 1 - h
	hostName, otherName := fmt.Sprintf("tm-%d", h+1), fmt.Sprintf("tm-%d", o+1)
	hostPEM := filepath.Join(dir, fmt.Sprintf("taskmanager-%s.pem", hostName))
	otherPEM := filepath.Join(dir, fmt.Sprintf("taskmanager-%s.pem", otherName))

	// The host may fetch them (the catch-up path of a missed push).
	resp, err := fetchTokens(certClient(t, c, hostPEM), hostName, id)
	if err != nil {
		t.Fatalf("the host's fetch: %v", err)
	}
	secret, _ := secretOf(t, resp, "sluice")

	// The token is the job's: it views its job on a listener taking bearer tokens, nothing else.
	if code := restStatus(t, "GET", api+"/jobs/"+id, secret); code != 200 {
		t.Errorf("GET its own job with the job token: %d", code)
	}
	for _, r := range [][2]string{{"GET", "/jobs/" + other}, {"GET", "/taskmanagers"}, {"GET", "/jobs/" + other + "/exceptions"}, {"PATCH", "/jobs/" + id + "?mode=cancel"}, {"GET", "/jobmanager/config"}} {
		if code := restStatus(t, r[0], api+r[1], secret); code != http.StatusForbidden {
			t.Errorf("%s %s with the job token: %d, want 403", r[0], r[1], code)
		}
	}

	// The job list is filtered to what the caller may view: its own job.
	req, _ := http.NewRequest("GET", api+"/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if r, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(body), id) || strings.Contains(string(body), other) {
			t.Errorf("GET /jobs with the job token: %d %s, want its own job only", r.StatusCode, body)
		}
	}

	// Nobody else gets them.
	for _, tc := range []struct {
		name   string
		client controlpb.JobManagerClient
		as     string
	}{
		{"the other taskmanager's certificate", certClient(t, c, otherPEM), otherName},
		{"the other taskmanager's certificate naming the host", certClient(t, c, otherPEM), hostName},
		{"a certificate of a taskmanager not registered", certClient(t, c, filepath.Join(dir, "taskmanager-tm-3.pem")), "tm-3"},
		{"the shared taskmanager certificate", certClient(t, c, filepath.Join(dir, "taskmanager.pem")), hostName},
	} {
		resp, err := fetchTokens(tc.client, tc.as, id)
		if status.Code(err) != codes.PermissionDenied || len(resp.GetSets()) > 0 {
			t.Errorf("%s: %v (%d sets), want PermissionDenied", tc.name, err, len(resp.GetSets()))
		}
	}
	for name, client := range map[string]controlpb.JobManagerClient{
		"plaintext":               rpcClient(t, c, nil),
		"TLS without certificate": rpcClient(t, c, &tls.Config{InsecureSkipVerify: true}),
	} {
		if resp, err := fetchTokens(client, hostName, id); err == nil || len(resp.GetSets()) > 0 {
			t.Errorf("%s client: %v, want a refusal", name, err)
		}
	}
	c.waitFor(10*time.Second, "the JobManager to log the refusals", func() bool {
		return strings.Contains(c.jm.Log(), "delegation tokens refused")
	})

	// Renewed at 0.75 of 20 s and pushed.
	if hostOf(t, c, id, 2) != h {
		t.Fatalf("the renewal went to another taskmanager")
	}
	resp, err = fetchTokens(certClient(t, c, hostPEM), hostName, id)
	if err != nil {
		t.Fatal(err)
	}
	renewed, version := secretOf(t, resp, "sluice")
	if renewed == secret || version < 2 {
		t.Fatalf("the renewal did not change the token (version %d)", version)
	}
	if strings.Contains(c.tms[o].Log(), "job="+id) {
		t.Errorf("the taskmanager without the job's tasks heard of its tokens:\n%s", c.tms[o].Log())
	}
	var ov map[string]any
	if err := c.get("/overview", &ov); err != nil {
		t.Fatal(err)
	}
	if dt, _ := ov["delegation-tokens"].([]any); len(dt) != 1 || dt[0].(map[string]any)["service"] != "sluice" {
		t.Errorf("/overview delegation-tokens: %v", ov["delegation-tokens"])
	}
	assertNoSecretsOnTaskManagers(t, c, secret, renewed)
	if strings.Contains(c.jm.Log(), secret) || strings.Contains(c.jm.Log(), renewed) {
		t.Error("the JobManager logged a token's secret")
	}

	// The job ends: the TaskManager drops the tokens, the JobManager revokes them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
	c.waitFor(30*time.Second, "the tokens dropped on the host", func() bool {
		return regexp.MustCompile(`msg="delegation tokens dropped.*job=` + id).MatchString(c.tms[h].Log())
	})
	if _, err := fetchTokens(certClient(t, c, hostPEM), hostName, id); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the host's fetch after the job ended: %v, want PermissionDenied", err)
	}
	c.waitFor(10*time.Second, "the job token revoked", func() bool {
		return restStatus(t, "GET", api+"/jobs/"+id, renewed) == http.StatusUnauthorized
	})
}

// writeSpec writes a job spec to a temporary file.
func writeSpec(t *testing.T, spec string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDelegationTokensNeedTaskManagerIdentity: on a cluster whose TaskManagers have no
// certificate of their own (internal TLS off here), a job holding delegation tokens does not
// start: it fails at once, without restarts, saying why and what to configure; no TaskManager
// receives a token. A job without tokens runs as before.
func TestDelegationTokensNeedTaskManagerIdentity(t *testing.T) {
	c := startCluster(t, 1, 2)
	job := fmt.Sprintf(unboundedJob, "tokens-plain") + "config:\n  security.delegation.token.provider.sluice.enabled: true\n"
	id := runDetached(t, c, writeSpec(t, job), "-p", "1")
	c.waitFor(30*time.Second, "the job to fail", func() bool { return c.jobState(id) == "FAILED" })
	j := c.job(id)
	cause := fmt.Sprint(j["failure-cause"], j["root-exception"])
	var ex map[string]any
	if err := c.get("/jobs/"+id+"/exceptions", &ex); err == nil {
		cause += fmt.Sprint(ex["root-exception"])
	}
	for _, want := range []string{"holds delegation tokens (sluice)", "has no client certificate", "security.ssl.internal.auto"} {
		if !strings.Contains(cause, want) {
			t.Errorf("the failure %q lacks %q", cause, want)
		}
	}
	if r, _ := j["restarts"].(float64); r != 0 {
		t.Errorf("%v restarts", r)
	}
	if strings.Contains(c.tms[0].Log(), "delegation tokens received") {
		t.Errorf("a taskmanager without identity received tokens:\n%s", c.tms[0].Log())
	}
	other := runDetached(t, c, writeSpec(t, fmt.Sprintf(unboundedJob, "no-tokens")), "-p", "1")
	c.waitFor(30*time.Second, "the job without tokens running", func() bool { return c.jobState(other) == "RUNNING" })
}
