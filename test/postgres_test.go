package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/kdc"
)

// The PostgreSQL sink (issue 13) against Debian's PostgreSQL server, started by the test
// (pgserver_test.go): Kerberos from the TaskManager's login, TLS verify-full with the sluice
// CA, SCRAM, upserts, exactly-once through a TaskManager kill, data-level refusal at submit.

// pgJob is a generator of count records (id, key, value) into a postgres sink.
func pgJob(name string, count int, sink string) string {
	return fmt.Sprintf(`name: %s
operators:
  - {name: gen, type: generator, count: %d, keys: 10}
  - name: out
    type: postgres
    input: gen
%s`, name, count, sink)
}

// runJob runs a spec with `sluice run` (waiting for the end) and returns its output.
func runJob(t *testing.T, c *cluster, spec string, args ...string) (string, string, int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(f, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return c.sluice(ctx, append([]string{"run", f}, args...)...)
}

// TestPostgresKerberos: the TaskManager logs in from alice's keytab (kerberos.Start, the
// PostgresClient login context) and the sink authenticates with it through GSSAPI, against a
// server whose pg_hba.conf says gss include_realm=0 and whose keytab comes from the KDC: rows
// are written as alice (current_user); a url naming another role is refused with the
// principal and the key to fix; after the TaskManager logged in again (relogin), jobs still
// connect.
func TestPostgresKerberos(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "postgres/localhost")
	k.AddPrincipal(t, "alice")
	srvKeytab := k.Keytab(t, "postgres/localhost")
	aliceKeytab := k.Keytab(t, "alice")
	pg := startPostgres(t, pgOptions{keytab: srvKeytab, krb5Conf: k.Krb5Conf, hba: []string{
		"hostgssenc all all 127.0.0.1/32 gss include_realm=0 krb_realm=" + k.Realm,
		"host all all 127.0.0.1/32 gss include_realm=0 krb_realm=" + k.Realm,
	}})
	pg.mustQuery(t, "postgres", "CREATE DATABASE appdb")
	pg.mustQuery(t, "postgres", "CREATE ROLE alice LOGIN; CREATE ROLE carol LOGIN")
	pg.mustQuery(t, "appdb", "CREATE TABLE events (id bigint, key text, value bigint, written_by text DEFAULT current_user); GRANT INSERT, SELECT ON events TO alice, carol")

	c := startClusterWith(t, clusterSpec{n: 1, slots: 2, defines: []string{"restart-strategy.type=none"},
		tm: func(int) []string {
			return []string{"security.kerberos.krb5-conf.path=" + k.Krb5Conf, "security.kerberos.login.keytab=" + aliceKeytab,
				"security.kerberos.login.principal=alice@" + k.Realm, "security.kerberos.login.contexts=PostgresClient",
				"security.kerberos.relogin.period=2 s"}
		}})
	url := fmt.Sprintf("postgresql://localhost:%d/appdb?sslmode=disable", pg.port)

	t.Run("rows written as alice", func(t *testing.T) {
		out, stderr, code := runJob(t, c, pgJob("pg-krb", 100, "    url: "+url+"\n    table: events\n"))
		if code != 0 {
			t.Fatalf("job: exit %d\n%s\n%s", code, out, stderr)
		}
		if got := pg.mustQuery(t, "appdb", "SELECT count(*), count(DISTINCT id), string_agg(DISTINCT written_by, ',') FROM events"); got != "100|100|alice" {
			t.Fatalf("rows, distinct ids, writers = %q, want 100|100|alice", got)
		}
		if !strings.Contains(pg.proc.Log(), "user=alice database=appdb") {
			t.Errorf("the server did not log alice's connection")
		}
	})

	t.Run("GSSAPI encryption", func(t *testing.T) {
		// The server's log names each connection's authentication and encryption: by
		// default (gssencmode=prefer, as libpq) the sink's connection is GSSAPI-encrypted
		// (the hostgssenc line); with gssencmode=disable it is only GSS-authenticated (the
		// host line); with require it must be encrypted.
		encrypted := `connection authorized: user=alice database=appdb application_name=sluice GSS \(authenticated=yes, encrypted=yes, (deleg_credentials=no, )?principal=alice@` + k.Realm + `\)`
		plain := strings.Replace(encrypted, "encrypted=yes", "encrypted=no", 1)
		if !regexpMatch(encrypted, pg.proc.Log()) {
			t.Errorf("the server did not log a GSSAPI-encrypted connection of alice from the sink")
		}
		if regexpMatch(plain, pg.proc.Log()) {
			t.Fatalf("a connection of the sink was not encrypted before gssencmode=disable")
		}
		for _, mode := range []string{"disable", "require"} {
			pg.mustQuery(t, "appdb", "TRUNCATE events")
			// 20000 rows: many wrap tokens of the largest size each way.
			out, stderr, code := runJob(t, c, pgJob("pg-krb-gssenc-"+mode, 20000, "    url: "+url+"&gssencmode="+mode+"\n    table: events\n"))
			if code != 0 {
				t.Fatalf("gssencmode=%s: exit %d\n%s\n%s", mode, code, out, stderr)
			}
			if got := pg.mustQuery(t, "appdb", "SELECT count(*), count(DISTINCT id), string_agg(DISTINCT written_by, ',') FROM events"); got != "20000|20000|alice" {
				t.Fatalf("gssencmode=%s: %q, want 20000|20000|alice", mode, got)
			}
		}
		if !regexpMatch(plain, pg.proc.Log()) {
			t.Errorf("gssencmode=disable: the server did not log an unencrypted GSS-authenticated connection")
		}
		// libpq's psql, with a ticket cache, is encrypted on the same server.
		pw := k.AddPrincipal(t, "dave")
		pg.mustQuery(t, "postgres", "CREATE ROLE dave LOGIN")
		ccache := filepath.Join(t.TempDir(), "dave.ccache")
		k.Kinit(t, "dave", pw, ccache)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(pgBinDir, "psql"), "-X", "-At", "-c", "SELECT current_user, gss_authenticated, encrypted FROM pg_stat_gssapi WHERE pid = pg_backend_pid()",
			fmt.Sprintf("host=localhost port=%d dbname=appdb user=dave gssencmode=require krbsrvname=postgres", pg.port))
		cmd.Env = append(os.Environ(), append(k.Env(), "KRB5CCNAME=FILE:"+ccache)...)
		inOwnGroup(cmd)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "dave|t|t" {
			t.Errorf("psql with gssencmode=require: %v: %s (want dave|t|t)", err, out)
		}
	})

	t.Run("wrong principal", func(t *testing.T) {
		out, stderr, code := runJob(t, c, pgJob("pg-krb-carol", 10, "    url: postgresql://carol@localhost:"+fmt.Sprint(pg.port)+"/appdb?sslmode=disable\n    table: events\n"))
		if code == 0 {
			t.Fatalf("a job connecting as carol with alice's Kerberos login succeeded:\n%s", out)
		}
		for _, want := range []string{"refused the Kerberos principal alice@" + k.Realm + " as role carol", "security.kerberos.login.principal"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the failure does not say %q:\n%s", want, stderr)
			}
		}
		if got := pg.mustQuery(t, "appdb", "SELECT count(*) FROM events WHERE written_by = 'carol'"); got != "0" {
			t.Errorf("%s rows written as carol", got)
		}
	})

	t.Run("unknown service principal", func(t *testing.T) {
		_, stderr, code := runJob(t, c, pgJob("pg-krb-srvname", 10, "    url: "+url+"&krbsrvname=nosuch\n    table: events\n"))
		if code == 0 || !strings.Contains(stderr, "nosuch/localhost") || !strings.Contains(stderr, "krbsrvname in url") {
			t.Errorf("exit %d, want a failure naming the principal nosuch/localhost and krbsrvname:\n%s", code, stderr)
		}
	})

	t.Run("login context not granted", func(t *testing.T) {
		other := startClusterWith(t, clusterSpec{n: 1, slots: 1, defines: []string{"restart-strategy.type=none"},
			tm: func(int) []string {
				return []string{"security.kerberos.krb5-conf.path=" + k.Krb5Conf, "security.kerberos.login.keytab=" + aliceKeytab,
					"security.kerberos.login.principal=alice@" + k.Realm, "security.kerberos.login.contexts=KafkaClient"}
			}})
		_, stderr, code := runJob(t, other, pgJob("pg-krb-nocontext", 10, "    url: postgresql://alice@localhost:"+fmt.Sprint(pg.port)+"/appdb?sslmode=disable\n    table: events\n"))
		if code == 0 || !strings.Contains(stderr, `login context "PostgresClient" may not use the Kerberos login: add it to security.kerberos.login.contexts`) {
			t.Errorf("exit %d, want a failure naming security.kerberos.login.contexts:\n%s", code, stderr)
		}
	})

	t.Run("after relogin", func(t *testing.T) {
		c.waitFor(30*time.Second, "the TaskManager logged in again", func() bool {
			return strings.Count(c.tms[0].Log(), "kerberos: logged in again from the keytab") >= 2
		})
		pg.mustQuery(t, "appdb", "TRUNCATE events")
		out, stderr, code := runJob(t, c, pgJob("pg-krb-relogin", 50, "    url: "+url+"\n    table: events\n"))
		if code != 0 {
			t.Fatalf("job after relogin: exit %d\n%s\n%s", code, out, stderr)
		}
		if got := pg.mustQuery(t, "appdb", "SELECT count(*), string_agg(DISTINCT written_by, ',') FROM events"); got != "50|alice" {
			t.Fatalf("after relogin: %q, want 50|alice", got)
		}
	})
}

// TestPostgresTLSAndSCRAM: sslmode=verify-full with the sluice CA and a SCRAM password read
// from a file by the task (hostssl ... scram-sha-256); a CA that did not sign the server's
// certificate and a wrong password are refused with the option to fix; an inline password
// never shows in logs or REST answers; upserts on a key keep the last row per key.
func TestPostgresTLSAndSCRAM(t *testing.T) {
	certs := createCertsHosts(t, "localhost")
	pg := startPostgres(t, pgOptions{restPEM: filepath.Join(certs, "rest.pem"), hba: []string{
		"hostssl all carol 127.0.0.1/32 scram-sha-256",
	}})
	const password = "s3cret-Pw-91c4"
	pg.mustQuery(t, "postgres", "CREATE DATABASE appdb")
	pg.mustQuery(t, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE carol LOGIN PASSWORD '"+password+"'")
	pg.mustQuery(t, "appdb", `CREATE FUNCTION conn_ssl() RETURNS boolean LANGUAGE sql AS 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';
		CREATE TABLE events (id bigint, key text, value bigint, written_by text DEFAULT current_user, tls boolean DEFAULT conn_ssl());
		CREATE TABLE latest (key text PRIMARY KEY, id bigint, value bigint);
		CREATE TABLE everything (id bigint, key text, value bigint);
		CREATE TABLE nogrant (id bigint, key text, value bigint);
		CREATE TABLE latest_eo (key text PRIMARY KEY, id bigint, value bigint);
		GRANT INSERT, SELECT, UPDATE ON events, latest, everything, latest_eo TO carol`)
	pwFile := filepath.Join(t.TempDir(), "pg-password")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	ca := filepath.Join(certs, "ca.crt")
	c := startCluster(t, 1, 2, "restart-strategy.type=none")
	base := fmt.Sprintf("postgresql://carol@localhost:%d/appdb?sslmode=verify-full", pg.port)

	t.Run("verify-full and a password file", func(t *testing.T) {
		url := base + "&sslrootcert=" + ca + "&password=file:" + pwFile
		out, stderr, code := runJob(t, c, pgJob("pg-tls", 200, "    url: "+url+"\n    table: events\n"), "-p", "2")
		if code != 0 {
			t.Fatalf("job: exit %d\n%s\n%s", code, out, stderr)
		}
		if got := pg.mustQuery(t, "appdb", "SELECT count(*), count(DISTINCT id), string_agg(DISTINCT written_by, ','), bool_and(tls) FROM events"); got != "200|200|carol|t" {
			t.Fatalf("rows, distinct ids, writers, tls = %q, want 200|200|carol|t", got)
		}
	})

	t.Run("another CA", func(t *testing.T) {
		other := filepath.Join(createCertsHosts(t, "localhost"), "ca.crt")
		url := base + "&sslrootcert=" + other + "&password=file:" + pwFile
		out, stderr, code := runJob(t, c, pgJob("pg-tls-ca", 10, "    url: "+url+"\n    table: events\n"))
		if code == 0 {
			t.Fatalf("a server certificate signed by another CA was accepted:\n%s", out)
		}
		if !strings.Contains(stderr, "sslrootcert") || !strings.Contains(stderr, "x509") {
			t.Errorf("the failure does not name the certificate problem and sslrootcert:\n%s", stderr)
		}
	})

	t.Run("wrong password, masked", func(t *testing.T) {
		const wrong = "Wrong-Pw-77ab1"
		url := base + "&sslrootcert=" + ca + "&password=" + wrong
		out, stderr, code := runJob(t, c, pgJob("pg-scram-wrong", 10, "    url: "+url+"\n    table: events\n"))
		if code == 0 {
			t.Fatalf("a wrong password was accepted:\n%s", out)
		}
		if !strings.Contains(stderr, "authentication failed") || !strings.Contains(stderr, "password in url") {
			t.Errorf("the failure does not say to fix the password in url:\n%s", stderr)
		}
		var jobs map[string]any
		_ = c.get("/jobs/overview", &jobs)
		for what, text := range map[string]string{"stdout": out, "stderr": stderr, "JobManager log": c.jm.Log(),
			"TaskManager log": c.tms[0].Log(), "/jobs/overview": fmt.Sprint(jobs)} {
			if strings.Contains(text, wrong) {
				t.Errorf("the password shows in the %s", what)
			}
		}
	})

	t.Run("upsert on a key", func(t *testing.T) {
		url := base + "&sslrootcert=" + ca + "&password=file:" + pwFile
		spec := fmt.Sprintf(`name: pg-upsert
operators:
  - {name: gen, type: generator, count: 1000, keys: 10}
  - {name: all, type: postgres, input: gen, url: "%[1]s", table: everything}
  - {name: last, type: postgres, input: gen, url: "%[1]s", table: latest, key: key, sink.buffer-flush.max-rows: 64}
`, url)
		for round := 0; round < 2; round++ { // the second run replays every key: idempotent
			out, stderr, code := runJob(t, c, spec, "-p", "1")
			if code != 0 {
				t.Fatalf("job: exit %d\n%s\n%s", code, out, stderr)
			}
		}
		if got := pg.mustQuery(t, "appdb", "SELECT count(*) FROM latest"); got != "10" {
			t.Fatalf("latest has %s rows, want one per key (10)", got)
		}
		if bad := pg.mustQuery(t, "appdb", "SELECT count(*) FROM latest l WHERE l.value <> (SELECT max(value) FROM everything e WHERE e.key = l.key)"); bad != "0" {
			t.Fatalf("%s keys do not hold their last row:\n%s", bad, pg.mustQuery(t, "appdb", "SELECT * FROM latest"))
		}
	})

	t.Run("exactly-once upsert without checkpointing", func(t *testing.T) {
		url := base + "&sslrootcert=" + ca + "&password=file:" + pwFile
		out, stderr, code := runJob(t, c, pgJob("pg-eo-upsert", 500, "    url: "+url+"\n    table: latest_eo\n    key: key\n    delivery-guarantee: exactly-once\n    sink.buffer-flush.max-rows: 7\n"), "-p", "2")
		if code != 0 {
			t.Fatalf("job: exit %d\n%s\n%s", code, out, stderr)
		}
		if got := pg.mustQuery(t, "appdb", "SELECT count(*), (SELECT count(*) FROM pg_prepared_xacts) FROM latest_eo"); got != "10|0" {
			t.Fatalf("keys, prepared transactions = %q, want 10|0", got)
		}
	})

	t.Run("no privilege, key without a unique index", func(t *testing.T) {
		url := base + "&sslrootcert=" + ca + "&password=file:" + pwFile
		_, stderr, code := runJob(t, c, pgJob("pg-nogrant", 10, "    url: "+url+"\n    table: nogrant\n"))
		if code == 0 || !strings.Contains(stderr, "GRANT INSERT") || !strings.Contains(stderr, "role carol may not write table public.nogrant") {
			t.Errorf("exit %d, want a failure naming the missing GRANT:\n%s", code, stderr)
		}
		_, stderr, code = runJob(t, c, pgJob("pg-nokey", 10, "    url: "+url+"\n    table: everything\n    key: id\n"))
		if code == 0 || !strings.Contains(stderr, "key (id) must be the columns of a primary key or unique index") {
			t.Errorf("exit %d, want a failure naming key:\n%s", code, stderr)
		}
	})

	t.Run("no TLS where the server wants it", func(t *testing.T) {
		url := strings.Replace(base, "sslmode=verify-full", "sslmode=disable", 1) + "&password=file:" + pwFile
		_, stderr, code := runJob(t, c, pgJob("pg-notls", 10, "    url: "+url+"\n    table: events\n"))
		if code == 0 || !strings.Contains(stderr, "check sslmode in url") {
			t.Errorf("exit %d, want a failure naming sslmode:\n%s", code, stderr)
		}
	})

	t.Run("missing table", func(t *testing.T) {
		url := base + "&sslrootcert=" + ca + "&password=file:" + pwFile
		_, stderr, code := runJob(t, c, pgJob("pg-missing", 10, "    url: "+url+"\n    table: nosuch\n"))
		if code == 0 || !strings.Contains(stderr, "table: public.nosuch does not exist in database appdb") {
			t.Errorf("exit %d, want a failure naming the table option:\n%s", code, stderr)
		}
	})
}

// TestPostgresExactlyOnceAfterKill: a job with 1 s checkpoints writes 20000 rows through
// prepared transactions at -p 2 over two TaskManagers; one TaskManager is killed with SIGKILL
// mid-run and another started. Every row is in the table once, and no prepared transaction
// is left behind (pg_prepared_xacts).
func TestPostgresExactlyOnceAfterKill(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, pgOptions{hba: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.mustQuery(t, "postgres", "CREATE DATABASE appdb")
	pg.mustQuery(t, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE writer LOGIN PASSWORD 'wpw'")
	pg.mustQuery(t, "appdb", "CREATE TABLE events (id bigint, key text, value bigint); GRANT INSERT, SELECT ON events TO writer")
	c, _ := checkpointCluster(t, 2, false)
	spec := fmt.Sprintf(`name: pg-exactly-once
config:
  execution.checkpointing.interval: 1 s
operators:
  - {name: gen, type: generator, count: 20000, rate: 1000, keys: 100}
  - name: out
    type: postgres
    input: gen
    url: postgresql://writer:wpw@localhost:%d/appdb?sslmode=disable
    table: events
    delivery-guarantee: exactly-once
`, pg.port)
	f := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(f, []byte(spec), 0o644)
	id := runDetached(t, c, f, "-p", "2")
	waitCheckpoints(t, c, id, 3)
	if n := pg.mustQuery(t, "appdb", "SELECT count(*) FROM events"); n == "0" {
		t.Errorf("nothing committed after 3 checkpoints")
	}
	// Kill while transactions are prepared and not yet committed: a checkpoint between its
	// barrier and its completion (or its commit), the window recovery must resolve.
	gids := pg.waitPrepared(t, "appdb")
	c.tms[0].Kill()
	t.Logf("killed a TaskManager while %v were prepared", gids)
	c.addTM()
	waitJobState(t, c, id, "FINISHED", 150*time.Second)
	if got := pg.mustQuery(t, "appdb", "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM events"); got != "20000|20000|0|19999" {
		t.Fatalf("rows, distinct ids, min, max = %q, want 20000|20000|0|19999 (no duplicate, no missing row)", got)
	}
	if got := pg.mustQuery(t, "appdb", "SELECT count(*) FROM pg_prepared_xacts"); got != "0" {
		t.Fatalf("%s prepared transactions left behind: %s", got, pg.mustQuery(t, "appdb", "SELECT gid FROM pg_prepared_xacts"))
	}
	if r, _ := c.job(id)["restarts"].(float64); r < 1 {
		t.Errorf("the job did not restart after the kill")
	}
	// Each transaction prepared at the kill was resolved by the recovery: committed when the
	// restored checkpoint holds it (its checkpoint completed), else rolled back, by name.
	_, _, _, latest := checkpointCounts(c, id)
	restored, _ := latest["restored"].(map[string]any)
	rid, _ := restored["id"].(float64)
	if rid == 0 {
		t.Fatalf("no restored checkpoint in %v", latest)
	}
	var logs strings.Builder
	for _, tm := range c.tms {
		logs.WriteString(tm.Log())
	}
	for _, gid := range gids {
		cp, _ := strconv.Atoi(gid[strings.LastIndexByte(gid, '_')+1:])
		rolledBack := strings.Contains(logs.String(), "gid="+gid)
		switch {
		case float64(cp) > rid && !rolledBack:
			t.Errorf("%s, prepared for checkpoint %d after the restored %v, was not rolled back", gid, cp, rid)
		case float64(cp) <= rid && rolledBack:
			t.Errorf("%s, held by the restored checkpoint %v, was rolled back", gid, rid)
		default:
			t.Logf("%s (checkpoint %d, restored %v): rolled back %v", gid, cp, rid, rolledBack)
		}
	}
}

// TestPostgresDataLevel: the sink declares write postgres:table/DB.SCHEMA.TABLE and reads its
// password file as a file; a submission the policy does not allow is refused at submit,
// naming the resource.
func TestPostgresDataLevel(t *testing.T) {
	needTool(t, "curl")
	e := startDataEnv(t, func(e *dataEnv) []string {
		p := filepath.Join(e.jmDir, "policy.yaml")
		b, _ := os.ReadFile(p)
		s := strings.Replace(string(b), "  developer:\n", "  developer:\n    - verbs: [write]\n      resources: [\"postgres:table/appdb.public.allowed\"]\n", 1)
		os.WriteFile(p, []byte(s), 0o600)
		return nil
	})
	pwIn := filepath.Join(e.in, "pw")
	os.WriteFile(pwIn, []byte("x\n"), 0o644)
	url := "postgresql://carol@127.0.0.1:1/appdb?sslmode=disable&password=file:"
	for _, tc := range []struct {
		name, table, pw, refused string
	}{
		{"table not granted", "events", pwIn, "write postgres:table/appdb.public.events"},
		{"schema-qualified, not granted", "audit.allowed", pwIn, "write postgres:table/appdb.audit.allowed"},
		{"password file not granted", "allowed", filepath.Join(e.secret, "data.txt"), "read file:" + filepath.Join(e.secret, "data.txt")},
		{"granted", "allowed", pwIn, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := e.run(t, pgJob("pg-"+strings.ReplaceAll(tc.name, " ", "-"), 5, "    url: "+url+tc.pw+"\n    table: "+tc.table+"\n"), "--detached")
			t.Logf("exit %d: %s %s", code, out, stderr)
			if tc.refused == "" {
				if code != 0 {
					t.Fatalf("a granted submission was refused: %s %s", out, stderr)
				}
				return
			}
			if code == 0 || !strings.Contains(stderr, tc.refused) {
				t.Fatalf("exit %d, want a refusal naming %q:\n%s%s", code, tc.refused, out, stderr)
			}
			e.leaked(t, tc.name, out, stderr)
		})
	}
}

// TestPostgresAtLeastOnceUpsertAfterKill: at-least-once with a key is idempotent: a job
// upserting 20000 rows on their primary key at -p 2 survives a TaskManager's SIGKILL (rows
// written after the last checkpoint are written again on recovery, as updates, not
// duplicates), and the table ends as if each row was written once.
func TestPostgresAtLeastOnceUpsertAfterKill(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, pgOptions{hba: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.mustQuery(t, "postgres", "CREATE DATABASE appdb")
	pg.mustQuery(t, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE writer LOGIN PASSWORD 'wpw'")
	pg.mustQuery(t, "appdb", `CREATE TABLE events (id bigint PRIMARY KEY, key text, value bigint);
		CREATE TABLE replays (n bigint); INSERT INTO replays VALUES (0);
		CREATE FUNCTION count_replay() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS 'BEGIN UPDATE replays SET n = n + 1; RETURN NEW; END';
		CREATE TRIGGER replayed BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION count_replay();
		GRANT INSERT, UPDATE, SELECT ON events TO writer`)
	c, _ := checkpointCluster(t, 2, false)
	spec := fmt.Sprintf(`name: pg-upsert-at-least-once
config:
  execution.checkpointing.interval: 1 s
operators:
  - {name: gen, type: generator, count: 20000, rate: 1000, keys: 100}
  - name: out
    type: postgres
    input: gen
    url: postgresql://writer:wpw@localhost:%d/appdb?sslmode=disable
    table: events
    key: id
    delivery-guarantee: at-least-once
    sink.buffer-flush.interval: 100ms
`, pg.port)
	f := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(f, []byte(spec), 0o644)
	id := runDetached(t, c, f, "-p", "2")
	waitCheckpoints(t, c, id, 3)
	c.tms[0].Kill()
	c.addTM()
	waitJobState(t, c, id, "FINISHED", 150*time.Second)
	if got := pg.mustQuery(t, "appdb", "SELECT count(*), count(DISTINCT id), min(id), max(id), bool_and(value = id) FROM events"); got != "20000|20000|0|19999|t" {
		t.Fatalf("rows, distinct ids, min, max, values = %q, want 20000|20000|0|19999|t", got)
	}
	if r, _ := c.job(id)["restarts"].(float64); r < 1 {
		t.Errorf("the job did not restart after the kill")
	}
	t.Logf("rows written again as updates on recovery: %s", pg.mustQuery(t, "appdb", "SELECT n FROM replays"))
}
