package jobmanager

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/blob"
	"github.com/sluice-dev/sluice/internal/config"
)

func TestJobStoreExpirationParsing(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "3600", want: time.Hour}, // Flink 1.x: seconds
		{in: "2", want: 2 * time.Second},
		{in: "2 s", want: 2 * time.Second},
		{in: "1 h", want: time.Hour}, // Flink 2: a duration
		{in: "500 ms", want: 500 * time.Millisecond},
		{in: "0", err: "positive"},
		{in: "-3", err: "positive"},
		{in: "soon", err: "neither a number of seconds nor a duration"},
	} {
		cfg := config.New()
		if err := cfg.Set("jobstore.expiration-time", tc.in); err != nil {
			t.Fatal(err)
		}
		got, err := settingsExpiration(cfg)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "jobstore.expiration-time") {
				t.Errorf("%q: want an error naming the key and %q, got %v", tc.in, tc.err, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if d, err := settingsExpiration(config.New()); err != nil || d != time.Hour {
		t.Errorf("default: %v, %v; want Flink's 3600 s", d, err)
	}
}

func settingsExpiration(cfg *config.Config) (time.Duration, error) {
	s, err := SettingsFromConfig(cfg)
	return s.JobExpiration, err
}

// newTestJM is a JobManager that is never run, for the job store and the
// blob authorizer.
func newTestJM(t *testing.T, settings map[string]string) *JobManager {
	t.Helper()
	cfg := config.New()
	for k, v := range settings {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	jm, err := New(Options{Config: cfg, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return jm
}

// addJob registers a job whose spec is spec, in state s, ended at end.
func addJob(t *testing.T, jm *JobManager, id, spec string, s JobState, end time.Time, tasks ...*task) {
	t.Helper()
	k, err := jm.blobs.Put([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	j := &job{id: id, name: id, specKey: k, state: s, end: end, tasks: map[taskKey]*task{}, timestamps: map[JobState]time.Time{}, done: make(chan struct{})}
	for i, tk := range tasks {
		j.tasks[taskKey{0, i}] = tk
	}
	jm.jobs[id] = j
}

func TestExpireJobs(t *testing.T) {
	jm := newTestJM(t, map[string]string{"jobstore.expiration-time": "60", "jobstore.max-capacity": "2"})
	now := time.Now()
	addJob(t, jm, "expired", "spec expired", Finished, now.Add(-2*time.Minute))
	addJob(t, jm, "old", "spec old", Failed, now.Add(-30*time.Second))
	addJob(t, jm, "mid", "shared spec", Canceled, now.Add(-20*time.Second))
	addJob(t, jm, "new", "spec new", Finished, now.Add(-10*time.Second))
	addJob(t, jm, "running", "shared spec", Running, time.Time{})
	// A blob no job uses, as a previous JobManager in a persistent work
	// directory leaves behind.
	orphan, _ := jm.blobs.Put([]byte("left by an earlier run"))

	if n := jm.expireJobs(now); n != 2 {
		t.Errorf("removed %d jobs, want 2 (one expired, one over capacity)", n)
	}
	jm.collectBlobs()
	for _, id := range []string{"expired", "old"} {
		if _, ok := jm.jobs[id]; ok {
			t.Errorf("job %s kept", id)
		}
	}
	for _, id := range []string{"mid", "new", "running"} {
		if _, ok := jm.jobs[id]; !ok {
			t.Errorf("job %s removed", id)
		}
	}
	keys, _ := jm.blobs.Keys()
	want := map[string]bool{blob.Key([]byte("shared spec")): true, blob.Key([]byte("spec new")): true}
	if len(keys) != len(want) {
		t.Errorf("blobs left: %v, want the shared and the new spec", keys)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("blob %s left (orphan %v)", k, k == orphan)
		}
	}
}

// WorkDir: a configured directory is persistent, the default temporary.
func TestWorkDir(t *testing.T) {
	base := t.TempDir()
	cfg := config.New()
	if err := cfg.Set("process.working-dir", base); err != nil {
		t.Fatal(err)
	}
	set, err := SettingsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir, temp, err := WorkDir(set.WorkingDir, "")
	if err != nil || temp || dir != filepath.Join(base, "jobmanager") {
		t.Errorf("process.working-dir: %s %v %v", dir, temp, err)
	}
	flag := filepath.Join(t.TempDir(), "flag")
	if dir, temp, err := WorkDir(set.WorkingDir, flag); err != nil || temp || dir != flag {
		t.Errorf("--work-dir: %s %v %v", dir, temp, err)
	}
	t.Setenv("TMPDIR", t.TempDir())
	dir, temp, err = WorkDir("", "")
	if err != nil || !temp || !strings.HasPrefix(dir, os.Getenv("TMPDIR")) {
		t.Errorf("default: %s %v %v", dir, temp, err)
	}
}

// certWith returns a self-signed certificate carrying uri; the blob
// authorizer reads identities from certificates the TLS layer verified.
func certWith(t *testing.T, uri string) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestBlobAccess(t *testing.T) {
	jm := newTestJM(t, nil)
	jm.clusterID = "c1"
	jm.tms["tm-1"] = &taskManager{id: "tm-1"}
	jm.tms["tm-2"] = &taskManager{id: "tm-2"}
	addJob(t, jm, "j1", "spec of j1", Running, time.Time{}, &task{tm: "tm-1", state: TaskRunning})
	addJob(t, jm, "j2", "spec of j2", Running, time.Time{}, &task{tm: "tm-2", state: TaskFinished})
	j1, j2 := blob.Key([]byte("spec of j1")), blob.Key([]byte("spec of j2"))
	tm1, tm2 := certWith(t, "spiffe://c1/taskmanager/tm-1"), certWith(t, "spiffe://c1/taskmanager/tm-2")

	for _, tc := range []struct {
		name  string
		cert  *x509.Certificate // nil: plaintext
		claim string
		key   string
		err   string // "" allowed
	}{
		{name: "tm-1 fetches its job's blob", cert: tm1, claim: "tm-1", key: j1},
		{name: "the certificate is enough", cert: tm1, key: j1},
		{name: "tm-2 runs no task of j1", cert: tm2, claim: "tm-2", key: j1, err: "runs no task of a job that uses blob"},
		{name: "tm-2 claims to be tm-1", cert: tm2, claim: "tm-1", key: j1, err: "its certificate is spiffe://c1/taskmanager/tm-2"},
		{name: "a task that ended", cert: tm2, key: j2, err: "runs no task"},
		{name: "the jobmanager's certificate", cert: certWith(t, "spiffe://c1/jobmanager"), key: j1, err: "is not a taskmanager"},
		{name: "another cluster", cert: certWith(t, "spiffe://c2/taskmanager/tm-1"), key: j1, err: "is not a taskmanager of cluster c1"},
		{name: "an unregistered taskmanager", cert: certWith(t, "spiffe://c1/taskmanager/tm-9"), key: j1, err: "not registered"},
		{name: "plaintext: the claim is checked", claim: "tm-1", key: j1},
		{name: "plaintext: a wrong claim", claim: "tm-2", key: j1, err: "runs no task"},
		{name: "plaintext: no claim", key: j1, err: "names no taskmanager"},
		{name: "an unknown blob", cert: tm1, key: strings.Repeat("0", 64), err: "runs no task"},
	} {
		r := httptest.NewRequest("GET", "/blobs/"+tc.key, nil)
		if tc.cert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}
		}
		if tc.claim != "" {
			r.Header.Set(blob.RequesterHeader, tc.claim)
		}
		err := blobAccess{jm}.AuthorizeFetch(r, tc.key)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: want an error with %q, got %v", tc.name, tc.err, err)
		}
	}
}
