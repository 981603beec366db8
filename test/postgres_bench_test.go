package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPostgresSink: rows per second of the postgres sink (COPY, at-least-once) beside
// psql's \copy of the same rows into the same kind of table, its limit, in one run:
//
//	go test -run '^$' -bench BenchmarkPostgresSink -benchtime 1x ./test/
//
// Both read one CSV file of PG_BENCH_ROWS rows (default 1,000,000) of (id, key, value); the
// sink runs as `sluice local` (a JobManager and a TaskManager, a file source, parallelism 1),
// so its figure includes the process's start and the source's parsing.
func BenchmarkPostgresSink(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("PG_BENCH_ROWS"); v != "" {
		fmt.Sscan(v, &rows)
	}
	pg := startPostgres(b, pgOptions{hba: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.mustQuery(b, "postgres", "CREATE DATABASE bench")
	pg.mustQuery(b, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE writer LOGIN PASSWORD 'wpw'")
	dir := b.TempDir()
	data := filepath.Join(dir, "rows.csv")
	f, err := os.Create(data)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < rows; i++ {
		fmt.Fprintf(w, "%d,key-%d,%d\n", i, i%1000, i*7)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	os.Chmod(dir, 0o755) // psql runs as the test's user; the file is read as it is
	spec := filepath.Join(dir, "job.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: pg-bench
operators:
  - {name: src, type: file, path: %s, format: csv, fields: [id, key, value]}
  - name: out
    type: postgres
    input: src
    url: postgresql://writer:wpw@127.0.0.1:%d/bench?sslmode=disable
    table: sink_rows
    sink.buffer-flush.max-rows: 20000
`, data, pg.port)), 0o644)

	b.ResetTimer()
	var sinkSecs, psqlSecs float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pg.mustQuery(b, "bench", "DROP TABLE IF EXISTS sink_rows, psql_rows; CREATE TABLE sink_rows (id bigint, key text, value bigint); CREATE TABLE psql_rows (LIKE sink_rows); GRANT INSERT, SELECT ON sink_rows TO writer")
		b.StartTimer()

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, sluiceBin, "local", spec, "-p", "1", "--taskmanagers", "1", "--log-level", "warn")
		inOwnGroup(cmd)
		out, err := cmd.CombinedOutput()
		cancel()
		sinkSecs += time.Since(start).Seconds()
		if err != nil {
			b.Fatalf("sluice local: %v\n%s", err, out)
		}

		start = time.Now()
		if err := pg.psqlCopy("bench", "psql_rows", data); err != nil {
			b.Fatal(err)
		}
		psqlSecs += time.Since(start).Seconds()

		b.StopTimer()
		if got := pg.mustQuery(b, "bench", "SELECT (SELECT count(*) FROM sink_rows), (SELECT count(*) FROM psql_rows)"); got != fmt.Sprintf("%d|%d", rows, rows) {
			b.Fatalf("rows written by the sink | by psql = %s, want %d each", got, rows)
		}
		b.StartTimer()
	}
	sink := float64(rows*b.N) / sinkSecs
	psql := float64(rows*b.N) / psqlSecs
	b.ReportMetric(sink, "sink-rows/s")
	b.ReportMetric(psql, "psql-copy-rows/s")
	b.ReportMetric(sink/psql, "sink/psql")
}
