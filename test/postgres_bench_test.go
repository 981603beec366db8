package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPostgresSink: rows per second of the postgres sink (COPY, at-least-once, one
// subtask) beside psql's \copy of the same rows into the same kind of table, its limit, in
// one run:
//
//	go test -run '^$' -bench BenchmarkPostgresSink -benchtime 1x ./test/
//
// The rows are PG_BENCH_ROWS (default 1,000,000) records (id, key, value) of the generator:
// the sink's job (`sluice local`, generator -> postgres) makes them as it writes, and psql
// reads them from the CSV file the same generator wrote beforehand (not timed). The sink's
// figure includes the start of the in-process cluster; sink-rows/s-after-start subtracts the
// time of the same job writing one row.
func BenchmarkPostgresSink(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("PG_BENCH_ROWS"); v != "" {
		fmt.Sscan(v, &rows)
	}
	pg := startPostgres(b, pgOptions{hba: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.mustQuery(b, "postgres", "CREATE DATABASE bench")
	pg.mustQuery(b, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE writer LOGIN PASSWORD 'wpw'")
	dir := b.TempDir()
	job := func(name, sink string) string {
		spec := filepath.Join(dir, name+".yaml")
		os.WriteFile(spec, []byte(fmt.Sprintf("name: %s\noperators:\n  - {name: gen, type: generator, count: %d, keys: 1000}\n%s", name, rows, sink)), 0o644)
		return spec
	}
	local := func(spec string) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, sluiceBin, "local", spec, "-p", "1", "--taskmanagers", "1", "--log-level", "warn")
		inOwnGroup(cmd)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("sluice local %s: %v\n%s", spec, err, out)
		}
		return time.Since(start)
	}
	csvDir := filepath.Join(dir, "csv")
	local(job("to-csv", fmt.Sprintf("  - {name: out, type: file, input: gen, path: %s, format: csv}\n", csvDir)))
	data := filepath.Join(csvDir, "part-out-0")
	sinkOp := fmt.Sprintf(`  - name: out
    type: postgres
    input: gen
    url: postgresql://writer:wpw@127.0.0.1:%d/bench?sslmode=disable
    table: sink_rows
    sink.buffer-flush.max-rows: 20000
`, pg.port)
	toPG := job("to-postgres", sinkOp)
	// The same job with one row: what starting the in-process cluster and the sink costs.
	all := rows
	rows = 1
	oneRow := job("one-row", sinkOp)
	rows = all

	b.ResetTimer()
	var sinkSecs, startSecs, psqlSecs float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pg.mustQuery(b, "bench", "DROP TABLE IF EXISTS sink_rows, psql_rows; CREATE TABLE sink_rows (id bigint, key text, value bigint); CREATE TABLE psql_rows (LIKE sink_rows); GRANT INSERT, SELECT ON sink_rows TO writer")
		b.StartTimer()
		sinkSecs += local(toPG).Seconds()
		b.StopTimer()
		startSecs += local(oneRow).Seconds()
		pg.mustQuery(b, "bench", "DELETE FROM sink_rows WHERE id = 0 AND ctid = (SELECT max(ctid) FROM sink_rows WHERE id = 0)")
		b.StartTimer()
		start := time.Now()
		if err := pg.psqlCopy("bench", "psql_rows", data); err != nil {
			b.Fatal(err)
		}
		psqlSecs += time.Since(start).Seconds()
		b.StopTimer()
		if diff := pg.mustQuery(b, "bench", "SELECT (SELECT count(*) FROM sink_rows), (SELECT count(*) FROM (SELECT * FROM sink_rows EXCEPT ALL SELECT * FROM psql_rows) d)"); diff != fmt.Sprintf("%d|0", rows) {
			b.Fatalf("rows written by the sink | not among psql's = %s, want %d|0", diff, rows)
		}
		b.StartTimer()
	}
	sink := float64(rows*b.N) / sinkSecs
	psql := float64(rows*b.N) / psqlSecs
	b.ReportMetric(sink, "sink-rows/s")
	b.ReportMetric(float64(rows*b.N)/(sinkSecs-startSecs), "sink-rows/s-after-start")
	b.ReportMetric(psql, "psql-copy-rows/s")
	b.ReportMetric(sink/psql, "sink/psql")
}
