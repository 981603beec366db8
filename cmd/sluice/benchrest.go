package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/ca"
)

// restBenchResult compares GET /jobs/overview over HTTPS with token
// authentication against plaintext anonymous access, measured in one run.
type restBenchResult struct {
	Connections   int     `json:"connections"`
	Seconds       float64 `json:"seconds_each"`
	Jobs          int     `json:"jobs"`
	PlainRPS      float64 `json:"plain_anonymous_requests_per_sec"`
	TLSTokenRPS   float64 `json:"https_token_requests_per_sec"`
	Ratio         float64 `json:"https_token_to_plain_ratio"`
	PlainErrors   int64   `json:"plain_errors"`
	TLSTokenError int64   `json:"https_token_errors"`
	// The same HTTPS+token requests against a JobManager whose
	// authorization is an ACL policy of PolicyRules rules.
	AuthzRPS    float64 `json:"https_token_acl_requests_per_sec"`
	AuthzRatio  float64 `json:"acl_to_allow_all_ratio"`
	PolicyRules int     `json:"policy_rules"`
	AuthzErrors int64   `json:"https_token_acl_errors"`
}

func newBenchRESTCmd(g *globals) *cobra.Command {
	var conns, jobs int
	var dur time.Duration
	cmd := &cobra.Command{
		Use:   "rest",
		Short: "Requests/s of GET /jobs/overview: HTTPS with a bearer token and keep-alive vs plaintext anonymous, in one run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if conns < 1 || dur <= 0 || jobs < 0 {
				return fmt.Errorf("--connections and --duration must be positive, --jobs not negative")
			}
			res, err := benchREST(cmd.Context(), g, conns, jobs, dur)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	cmd.Flags().IntVar(&conns, "connections", 8, "concurrent keep-alive connections")
	cmd.Flags().IntVar(&jobs, "jobs", 20, "jobs the overview lists")
	cmd.Flags().DurationVar(&dur, "duration", 5*time.Second, "measuring time of each variant")
	return cmd
}

func benchREST(ctx context.Context, g *globals, conns, jobs int, dur time.Duration) (restBenchResult, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-rest-")
	if err != nil {
		return restBenchResult{}, err
	}
	defer os.RemoveAll(dir)
	authority, err := ca.New("", 24*time.Hour)
	if err != nil {
		return restBenchResult{}, err
	}
	cert, err := authority.IssueKeyPair(ca.RoleJobManager, "", []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		return restBenchResult{}, err
	}
	keystore := filepath.Join(dir, "rest.pem")
	var pemData []byte
	for _, der := range cert.Certificate {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return restBenchResult{}, err
	}
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})...)
	if err := os.WriteFile(keystore, pemData, 0o600); err != nil {
		return restBenchResult{}, err
	}
	tokens := filepath.Join(dir, "tokens")
	token, err := authn.AppendToken(tokens, "bench", []string{"bench"})
	if err != nil {
		return restBenchResult{}, err
	}
	const rules = 1000
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(benchPolicy(rules)), 0o600); err != nil {
		return restBenchResult{}, err
	}
	start := func(extra map[string]string) (*jobmanager.JobManager, error) {
		return startBenchJM(ctx, g, dir, keystore, tokens, jobs, extra)
	}
	jm, err := start(nil)
	if err != nil {
		return restBenchResult{}, err
	}
	jmACL, err := start(map[string]string{"security.authorization.mode": "acl", "security.authorization.acl.policy-file": policy})
	if err != nil {
		return restBenchResult{}, err
	}
	addrs := jm.RESTAddresses()
	roots := authority.Pool()
	res := restBenchResult{Connections: conns, Seconds: dur.Seconds(), Jobs: jobs, PolicyRules: rules}
	var perr, terr, aerr int64
	res.PlainRPS = hammer(ctx, "http://"+addrs["plain"]+"/jobs/overview", "", nil, conns, dur, &perr)
	res.TLSTokenRPS = hammer(ctx, "https://"+addrs["secure"]+"/jobs/overview", token, roots, conns, dur, &terr)
	res.AuthzRPS = hammer(ctx, "https://"+jmACL.RESTAddresses()["secure"]+"/jobs/overview", token, roots, conns, dur, &aerr)
	res.PlainErrors, res.TLSTokenError, res.AuthzErrors = perr, terr, aerr
	if res.PlainRPS > 0 {
		res.Ratio = res.TLSTokenRPS / res.PlainRPS
	}
	if res.TLSTokenRPS > 0 {
		res.AuthzRatio = res.AuthzRPS / res.TLSTokenRPS
	}
	return res, nil
}

// benchPolicy is an ACL policy of n rules in which the bench user may list
// and view jobs (the last rules, so every earlier one is passed over).
func benchPolicy(n int) string {
	var b strings.Builder
	b.WriteString("roles:\n")
	for i := 0; i < n-2; i++ {
		fmt.Fprintf(&b, "  role-%d:\n    - verbs: [read]\n      resources: [\"file:/data/team-%d/*\"]\n", i, i)
	}
	b.WriteString("  bench:\n    - verbs: [list]\n      resources: [jobs]\n    - verbs: [view]\n      resources: [\"job/*\"]\nbindings:\n")
	for i := 0; i < n-2; i++ {
		fmt.Fprintf(&b, "  - role: role-%d\n    users: [user-%d]\n", i, i)
	}
	b.WriteString("  - role: bench\n    groups: [bench]\n")
	return b.String()
}

// startBenchJM starts an in-process JobManager with a plaintext anonymous
// and an HTTPS token listener, holding `jobs` jobs.
func startBenchJM(ctx context.Context, g *globals, dir, keystore, tokens string, jobs int, extra map[string]string) (*jobmanager.JobManager, error) {
	cfg := config.New()
	settings := map[string]string{
		"jobmanager.bind-host": "127.0.0.1", "jobmanager.rpc.port": "0", "blob.server.port": "0",
		"security.ssl.rest.keystore":              keystore,
		"security.rest.authentication.token.file": tokens,
		"rest.listeners": `[{name: plain, address: "127.0.0.1:0", tls: false, authentication: [anonymous]},
			{name: secure, address: "127.0.0.1:0", tls: true, authentication: [token]}]`,
	}
	for k, v := range extra {
		settings[k] = v
	}
	for k, v := range settings {
		if err := cfg.Set(k, v); err != nil {
			return nil, err
		}
	}
	jm, err := jobmanager.New(jobmanager.Options{Config: cfg, Logger: g.log, WorkDir: filepath.Join(dir, fmt.Sprint(len(extra)))})
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- jm.Run(ctx) }()
	select {
	case <-jm.Ready():
	case err := <-errc:
		return nil, err
	}
	// Jobs wait for slots that never come: enough to give the overview
	// something to list.
	for i := 0; i < jobs; i++ {
		spec := fmt.Sprintf("name: bench-%d\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: s, type: blackhole, input: g}\n", i)
		if _, err := jm.Submit(jobmanager.Submission{Spec: []byte(spec)}); err != nil {
			return nil, err
		}
	}
	return jm, nil
}

// hammer sends GETs on conns keep-alive connections for dur and returns
// the successful requests per second.
func hammer(ctx context.Context, url, token string, roots *x509.CertPool, conns int, dur time.Duration, errs *int64) float64 {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var ok atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err != nil {
					atomic.AddInt64(errs, 1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					atomic.AddInt64(errs, 1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / dur.Seconds()
}
