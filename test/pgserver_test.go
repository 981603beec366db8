package test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pgBinDir holds Debian's PostgreSQL server programs (make deps installs postgresql-15).
const pgBinDir = "/usr/lib/postgresql/15/bin"

// pgServer is a PostgreSQL server a test started: initdb in a private temporary directory,
// listening on a loopback port and on a Unix socket in that directory, in its own process
// group. The test administers it over the socket as the superuser postgres.
type pgServer struct {
	dir  string // data directory's parent: socket, keytab, certificates
	port int
	proc *proc
	cred *syscall.Credential // the server's OS user when the test runs as root
}

// pgOptions configure a test server.
type pgOptions struct {
	keytab   string   // krb_server_keyfile: the keys of postgres/localhost
	krb5Conf string   // the realm's krb5.conf (KRB5_CONFIG of the server)
	restPEM  string   // a sluice certificate (create-certs' rest.pem): ssl = on with it
	hba      []string // pg_hba.conf lines after the superuser's local trust
}

// startPostgres initdbs and starts a server; it is stopped at cleanup.
func startPostgres(t testing.TB, o pgOptions) *pgServer {
	t.Helper()
	for _, p := range []string{"initdb", "postgres", "psql"} {
		if _, err := os.Stat(filepath.Join(pgBinDir, p)); err != nil {
			t.Fatalf("PostgreSQL server not installed (%v): run make deps (test/install-deps.sh installs postgresql-15)", err)
		}
	}
	// Not t.TempDir: the server may run as another OS user, who must reach its directory.
	dir, err := os.MkdirTemp("", "sluice-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &pgServer{dir: dir, port: pgFreePort(t)}
	var uid, gid int
	if os.Geteuid() == 0 { // initdb and postgres refuse to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("the tests run as root and PostgreSQL must not: no OS user postgres (%v); make deps installs it with postgresql-15", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	s.chown(t, dir)
	s.run(t, filepath.Join(pgBinDir, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")

	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", s.port),
		fmt.Sprintf("unix_socket_directories = '%s'", dir),
		"max_prepared_transactions = 20",
		"fsync = off",
		"log_connections = on",
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s.chown(t, p)
		return p
	}
	copyIn := func(name, from string) string {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, string(b))
	}
	env := []string{}
	if o.keytab != "" {
		conf = append(conf, fmt.Sprintf("krb_server_keyfile = '%s'", copyIn("server.keytab", o.keytab)))
	}
	if o.krb5Conf != "" {
		env = append(env, "KRB5_CONFIG="+copyIn("krb5.conf", o.krb5Conf))
	}
	if o.restPEM != "" {
		b, err := os.ReadFile(o.restPEM)
		if err != nil {
			t.Fatal(err)
		}
		var certs, key []byte
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if strings.Contains(blk.Type, "PRIVATE KEY") {
				key = pem.EncodeToMemory(blk)
			} else {
				certs = append(certs, pem.EncodeToMemory(blk)...)
			}
		}
		conf = append(conf, "ssl = on",
			fmt.Sprintf("ssl_cert_file = '%s'", write("server.crt", string(certs))),
			fmt.Sprintf("ssl_key_file = '%s'", write("server.key", string(key))))
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, strings.Join(conf, "\n"))
	f.Close()
	hba := append([]string{"local all postgres trust"}, o.hba...)
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(strings.Join(hba, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.chown(t, filepath.Join(data, "pg_hba.conf"))

	s.proc = &proc{name: "postgres", done: make(chan struct{})}
	cmd := exec.Command(filepath.Join(pgBinDir, "postgres"), "-D", data)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = s.proc, s.proc
	inOwnGroup(cmd)
	cmd.SysProcAttr.Credential = s.cred
	s.proc.cmd = cmd
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	go func() { _ = cmd.Wait(); close(s.proc.done) }()
	t.Cleanup(func() {
		s.proc.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-s.proc.done:
		case <-time.After(10 * time.Second):
			s.proc.Kill()
		}
		if t.Failed() {
			t.Logf("--- postgres log ---\n%s", s.proc.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.query("postgres", "SELECT 1"); err == nil {
			break
		}
		select {
		case <-s.proc.done:
			t.Fatalf("postgres exited:\n%s", s.proc.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not start:\n%s", s.proc.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// pgFreePort is a free loopback port (freePort for benchmarks as well as tests).
func pgFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// chown gives path to the server's OS user, when it is not the test's.
func (s *pgServer) chown(t testing.TB, path string) {
	t.Helper()
	if s.cred == nil {
		return
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		t.Fatal(err)
	}
}

func (s *pgServer) run(t testing.TB, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	inOwnGroup(cmd)
	cmd.SysProcAttr.Credential = s.cred
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(bin), err, out)
	}
}

// query runs SQL as the superuser over the Unix socket and returns psql's unaligned rows.
func (s *pgServer) query(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pgBinDir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
		"-h", s.dir, "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", db, "-c", sql)
	inOwnGroup(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// waitPrepared polls pg_prepared_xacts of db over one connection until it holds a
// transaction, and returns their gids.
func (s *pgServer) waitPrepared(t testing.TB, db string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		res := conn.ExecParams(ctx, "SELECT gid FROM pg_prepared_xacts", nil, nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatalf("waiting for a prepared transaction: %v", res.Err)
		}
		if len(res.Rows) > 0 {
			var gids []string
			for _, r := range res.Rows {
				gids = append(gids, string(r[0]))
			}
			return gids
		}
		time.Sleep(time.Millisecond)
	}
}

// mustQuery is query that fails the test on an error.
func (s *pgServer) mustQuery(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := s.query(db, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// psqlCopy runs psql's \copy of a local CSV file with a header line into table (the
// benchmark's limit).
func (s *pgServer) psqlCopy(db, table, file string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pgBinDir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", s.dir, "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", db, "-c", `\copy `+table+` FROM '`+file+`' WITH (FORMAT csv, HEADER true)`)
	inOwnGroup(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql \\copy: %v: %s", err, out)
	}
	return nil
}
