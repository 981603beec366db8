package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the sluice command line and returns stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// fakeJM is a JobManager that answers /whoami and /jobs/overview with its
// name and the bearer token it received.
func fakeJM(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch r.URL.Path {
		case "/whoami":
			if tok == "" {
				w.Header().Add("WWW-Authenticate", `Bearer realm="sluice"`)
				w.Header().Add("WWW-Authenticate", `ClientCertificate realm="sluice"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"username":"` + name + `","groups":["eng","acme"],"method":"token","listener":"` + tok + `"}`))
		case "/jobs/overview":
			w.Write([]byte(`{"jobs":[{"jid":"` + name + `","name":"` + tok + `","state":"RUNNING"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestClientPrecedence checks flags over environment over the context
// file, through the real command line.
func TestClientPrecedence(t *testing.T) {
	fileJM, envJM, flagJM := fakeJM(t, "file-jm"), fakeJM(t, "env-jm"), fakeJM(t, "flag-jm")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flag-token"), []byte("flag-file-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "current-context: dev\ncontexts:\n  - name: dev\n    jobmanager: " + fileJM.URL + "\n    token-file: token\n" +
		"  - name: other\n    jobmanager: " + envJM.URL + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string // "user: X" line and the token as the listener
		wantErr string
	}{
		{name: "file", want: "user: file-jm\ngroups: eng, acme\nmethod: token\nlistener: file-token\n"},
		{name: "env token over file", env: map[string]string{"SLUICE_TOKEN": "env-token"}, want: "user: file-jm\ngroups: eng, acme\nmethod: token\nlistener: env-token\n"},
		{name: "flag token over env", env: map[string]string{"SLUICE_TOKEN": "env-token"}, args: []string{"--token", "flag-token"}, want: "listener: flag-token"},
		{name: "token-file flag over env", env: map[string]string{"SLUICE_TOKEN": "env-token"}, args: []string{"--token-file", filepath.Join(dir, "flag-token")}, want: "listener: flag-file-token"},
		{name: "env jobmanager over file", env: map[string]string{"SLUICE_JOBMANAGER": envJM.URL, "SLUICE_TOKEN": "t"}, want: "user: env-jm"},
		{name: "flag jobmanager over env", env: map[string]string{"SLUICE_JOBMANAGER": envJM.URL, "SLUICE_TOKEN": "t"}, args: []string{"--jobmanager", flagJM.URL}, want: "user: flag-jm"},
		{name: "--context", args: []string{"--context", "other", "--token", "x"}, want: "user: env-jm"},
		{name: "context's token withheld from another JobManager", env: map[string]string{"SLUICE_JOBMANAGER": envJM.URL},
			wantErr: "authentication required: the JobManager accepts token, x509; pass --token/--token-file or --cert/--key"},
		{name: "unknown context", args: []string{"--context", "prod"}, wantErr: `no context "prod" in ` + filepath.Join(dir, "config.yaml") + " (known contexts: dev, other)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SLUICECONFIG", filepath.Join(dir, "config.yaml"))
			for _, k := range []string{"SLUICE_JOBMANAGER", "SLUICE_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			out, _, err := runCLI(t, append([]string{"whoami", "--log-level", "error"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output %q, want %q", out, tt.want)
			}
		})
	}
}

func TestWhoamiJSON(t *testing.T) {
	jm := fakeJM(t, "alice")
	t.Setenv("SLUICECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SLUICE_TOKEN", "tok")
	out, _, err := runCLI(t, "whoami", "--jobmanager", jm.URL, "--json")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"username":"alice","groups":["eng","acme"],"method":"token","listener":"tok"}` + "\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestListUsesClientFlags(t *testing.T) {
	jm := fakeJM(t, "jm")
	t.Setenv("SLUICECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SLUICE_TOKEN", "")
	out, _, err := runCLI(t, "list", "--jobmanager", jm.URL, "--token", "abc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "jm  ") || !strings.Contains(out, "abc") {
		t.Errorf("output %q", out)
	}
	_, _, err = runCLI(t, "list", "--jobmanager", "http://192.0.2.1:1", "--token", "abc")
	if err == nil || !strings.Contains(err.Error(), "refusing to send a token over plaintext http to 192.0.2.1:1; use https") {
		t.Errorf("error %v", err)
	}
}

func TestTokenCreate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no user", args: []string{"--file", file}, wantErr: "--user is required"},
		{name: "no file", args: []string{"--user", "alice"}, wantErr: "--file is required"},
		{name: "ok", args: []string{"--user", "alice", "--groups", "eng,acme", "--file", file}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, append([]string{"token", "create"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSuffix(out, "\n")
			if tok == "" || strings.ContainsAny(tok, " \n") {
				t.Fatalf("stdout %q is not a token alone", out)
			}
			if want := "store it now: only its hash is kept in " + file; !strings.Contains(errOut, want) {
				t.Errorf("stderr %q, want %q", errOut, want)
			}
			if strings.Contains(errOut, tok) {
				t.Error("the token is on stderr")
			}
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", st.Mode().Perm())
			}
			data, _ := os.ReadFile(file)
			if strings.Contains(string(data), tok) || !strings.Contains(string(data), "alice") {
				t.Errorf("token file %q", data)
			}
		})
	}
}

// TestClientReadsClusterConfig: as Flink's CLI, the client reads
// rest.address and rest.port from -D (and --config), below contexts and
// flags; -m is --jobmanager.
func TestClientReadsClusterConfig(t *testing.T) {
	t.Setenv("SLUICECONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("SLUICE_JOBMANAGER", "")
	cfgJM, flagJM := fakeJM(t, "config-jm"), fakeJM(t, "flag-jm")
	u, _ := url.Parse(cfgJM.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	// A client config file with no context, so only -D and -m decide.
	if err := os.WriteFile(os.Getenv("SLUICECONFIG"), []byte("contexts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "list", "-D", "rest.address="+host, "-D", "rest.port="+port)
	if err != nil || !strings.Contains(out, "config-jm") {
		t.Fatalf("-D rest.address/rest.port: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runCLI(t, "list", "-D", "rest.address="+host, "-D", "rest.port="+port, "-m", flagJM.URL)
	if err != nil || !strings.Contains(out, "flag-jm") {
		t.Fatalf("-m over -D: %v\n%s%s", err, out, errOut)
	}
}
