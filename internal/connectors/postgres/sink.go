package postgres

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/state"
)

// sink is one subtask of a postgres sink. Without a key it writes with COPY (text format: the
// server converts each column from text, so a record's ints and strings fit any column type
// that reads them), streamed: a batch's COPY starts with its first row and rows go to the
// server as they come, so the server parses while the task produces; with a key it upserts with multi-row INSERT ... ON CONFLICT (key) DO
// UPDATE, the last row of a key in a batch winning, which makes replays idempotent.
//
// none and at-least-once write each batch in its own transaction (at-least-once also at every
// barrier, so a checkpoint covers every row before it); exactly-once writes between two
// barriers in one transaction, prepared (PREPARE TRANSACTION) at the barrier and committed
// (COMMIT PREPARED) when the checkpoint completes, through dataflow.TwoPhaseCommit.
type sink struct {
	opts *Options
	name string
	log  *slog.Logger
	ctx  context.Context
	rc   *dataflow.RuntimeContext

	set   map[string]string // the url's parameters
	login login
	files tlsFiles
	conn  *pgconn.PgConn // writes
	ctl   *pgconn.PgConn // exactly-once: COMMIT/ROLLBACK PREPARED while conn is in a transaction

	qualified string   // "schema"."table"
	colTypes  []string // per column: its type, for the upsert's casts
	copySQL   string

	// The batch: the COPY in progress, or for upserts the rows' texts (nil: NULL), one
	// row per key.
	copy      *copyStream
	line      []byte
	rows      [][][]byte
	rowOfKey  map[string]int
	keyBuf    []byte
	buffered  int
	lastFlush time.Time

	// exactly-once
	tpc       *dataflow.TwoPhaseCommit[string]
	inTx      bool // conn has begun the current transaction
	gidPrefix string
}

// Open connects, checks the table and its columns, and with exactly-once resolves what a
// failed attempt left prepared.
func (s *sink) Open(ctx context.Context, rc *dataflow.RuntimeContext) error {
	s.name, s.log, s.ctx, s.rc = rc.Operator, rc.Logger, ctx, rc
	o := s.opts
	set := o.URL.cs.settings // the options are shared by the subtasks: read only
	if set == nil {
		cs, err := parseConnString(o.URL.raw)
		if err != nil {
			return fmt.Errorf("url: %w", err)
		}
		set = cs.settings
	}
	s.set = set
	var err error
	if s.login, err = resolveLogin(ctx, rc, set); err != nil {
		return err
	}
	if s.files, err = loadTLSFiles(rc, set); err != nil {
		return err
	}
	if s.conn, err = s.connect(ctx); err != nil {
		return err
	}
	s.qualified = quoteIdent(o.schema) + "." + quoteIdent(o.table)
	if err := s.checkTable(ctx); err != nil {
		return err
	}
	s.copySQL = "COPY " + s.qualified + " (" + quoteIdents(o.columns) + ") FROM STDIN"
	s.rowOfKey = map[string]int{}
	s.lastFlush = time.Now()
	if o.DeliveryGuarantee != DeliveryExactlyOnce {
		return nil
	}
	if err := s.checkPrepared(ctx); err != nil {
		return err
	}
	if s.ctl, err = s.connect(ctx); err != nil {
		return err
	}
	s.gidPrefix = gidPrefix(rc.Job.ID, rc.Operator)
	// Commits the transactions the restored checkpoint holds (those of every subtask).
	if s.tpc, err = dataflow.NewTwoPhaseCommit[string](rc, s); err != nil {
		return err
	}
	return s.rollbackStale(ctx)
}

func (s *sink) connect(ctx context.Context) (*pgconn.PgConn, error) {
	set := s.set
	cfg, unregister, err := pgConfig(set, s.login, s.files)
	if err != nil {
		return nil, err
	}
	defer unregister()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, explainConnect(err, set, s.login)
	}
	return c, nil
}

// checkTable finds the table and the types of the columns the input writes.
func (s *sink) checkTable(ctx context.Context) error {
	o := s.opts
	res := s.conn.ExecParams(ctx,
		`SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
		[][]byte{[]byte(s.qualified)}, nil, nil, nil).Read()
	if res.Err != nil {
		return s.explain("look up table "+s.display(), res.Err)
	}
	if len(res.Rows) == 0 {
		return fmt.Errorf("table: %s does not exist in database %s (or %s may not see it): create it, or fix table (the sink does not create tables)",
			s.display(), s.set["dbname"], s.login.user)
	}
	types := map[string]string{}
	var names []string
	for _, r := range res.Rows {
		types[string(r[0])] = string(r[1])
		names = append(names, string(r[0]))
	}
	s.colTypes = make([]string, len(o.columns))
	for i, c := range o.columns {
		t, ok := types[c]
		if !ok {
			return fmt.Errorf("table: %s has no column %q for the input's field of that name (its columns: %s): add the column or rename the field (a map before the sink)",
				s.display(), c, strings.Join(names, ", "))
		}
		s.colTypes[i] = t
	}
	return nil
}

// checkPrepared: exactly-once needs prepared transactions, off by default on a server.
func (s *sink) checkPrepared(ctx context.Context) error {
	res := s.conn.ExecParams(ctx, "SELECT current_setting('max_prepared_transactions')::int", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return s.explain("read max_prepared_transactions", res.Err)
	}
	if len(res.Rows) == 1 && string(res.Rows[0][0]) == "0" {
		return errors.New("delivery-guarantee: exactly-once needs prepared transactions, and the server has max_prepared_transactions = 0: set it above the sink's parallelism in postgresql.conf (and restart the server), or use at-least-once with a key")
	}
	return nil
}

func (s *sink) display() string { return s.opts.schema + "." + s.opts.table }

// Process buffers the record and writes a batch when it is full (or older than
// sink.buffer-flush.interval).
func (s *sink) Process(_ int, e *dataflow.Element) error {
	if len(s.opts.Key) == 0 {
		if s.copy == nil {
			if err := s.startCopy(); err != nil {
				return err
			}
		}
		s.line = appendCopyRow(s.line[:0], s.opts.in, e.Record)
		if _, err := s.copy.w.Write(s.line); err != nil {
			if cerr := s.write(); cerr != nil {
				return cerr // the COPY failed: the server's error
			}
			return s.explain("write to "+s.display(), err)
		}
	} else {
		s.addUpsertRow(e.Record)
	}
	s.buffered++
	if s.buffered >= s.opts.MaxRows || (s.opts.interval > 0 && time.Since(s.lastFlush) >= s.opts.interval) {
		return s.write()
	}
	return nil
}

// copyStream is a COPY in progress: rows written to w reach CopyFrom, which its goroutine
// runs, through a pipe.
type copyStream struct {
	w    *bufio.Writer
	pw   *io.PipeWriter
	done chan error // CopyFrom's result
}

// begin starts the exactly-once transaction with the first write after a barrier.
func (s *sink) begin() error {
	if s.tpc == nil || s.inTx {
		return nil
	}
	if err := s.exec(s.ctx, "BEGIN"); err != nil {
		return err
	}
	s.inTx = true
	return nil
}

// startCopy starts the batch's COPY. Its goroutine is owned by the sink: endCopy or
// abortCopy waits for it.
func (s *sink) startCopy() error {
	if err := s.begin(); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	c := &copyStream{w: bufio.NewWriterSize(pw, 64<<10), pw: pw, done: make(chan error, 1)}
	conn, ctx, sql := s.conn, s.ctx, s.copySQL
	go func() {
		_, err := conn.CopyFrom(ctx, pr, sql)
		// A failed COPY reads no more: unblock the writer with the error.
		pr.CloseWithError(cmp.Or(err, io.ErrClosedPipe))
		c.done <- err
	}()
	s.copy = c
	return nil
}

// endCopy sends the rest of the batch and waits for the server's answer.
func (s *sink) endCopy() error {
	c := s.copy
	s.copy = nil
	werr := c.w.Flush()
	c.pw.Close()
	if err := <-c.done; err != nil {
		return err
	}
	return werr
}

// abortCopy abandons the COPY in progress (CopyFail): nothing of it is written.
func (s *sink) abortCopy() {
	if s.copy == nil {
		return
	}
	s.copy.pw.CloseWithError(errors.New("sink closed"))
	<-s.copy.done
	s.copy = nil
}

// write sends the batch: in its own transaction, or in the exactly-once transaction.
func (s *sink) write() error {
	if s.buffered == 0 {
		return nil
	}
	var err error
	if s.copy != nil {
		err = s.endCopy()
	} else if err = s.begin(); err == nil {
		err = s.upsert(s.ctx)
	}
	if err != nil {
		return s.explain(fmt.Sprintf("write %d rows to %s", s.buffered, s.display()), err)
	}
	clear(s.rows)
	s.rows = s.rows[:0]
	clear(s.rowOfKey)
	s.buffered = 0
	s.lastFlush = time.Now()
	return nil
}

func (s *sink) exec(ctx context.Context, sql string) error {
	_, err := s.conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return s.explain(sql, err)
	}
	return nil
}

// explain names what to fix for the server's errors the user can fix.
func (s *sink) explain(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42501":
			return fmt.Errorf("%s: %s: role %s may not write table %s: GRANT INSERT (and UPDATE for an upsert) ON %s TO %s, or fix user in url",
				what, pe.Message, s.login.user, s.display(), s.display(), s.login.user)
		case "42P10":
			return fmt.Errorf("%s: %s: key (%s) must be the columns of a primary key or unique index of %s: fix key, or create the index",
				what, pe.Message, strings.Join(s.opts.Key, ", "), s.display())
		case "21000":
			return fmt.Errorf("%s: %s: key (%s) must be the columns of a primary key or unique index", what, pe.Message, strings.Join(s.opts.Key, ", "))
		}
		return fmt.Errorf("%s: %s (SQLSTATE %s)", what, pe.Message, pe.Code)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// appendCopyRow appends r as a line of COPY's text format.
func appendCopyRow(b []byte, schema dataflow.Schema, r dataflow.Record) []byte {
	for i, v := range r {
		if i > 0 {
			b = append(b, '\t')
		}
		switch v.Kind() {
		case dataflow.KindNull:
			b = append(b, `\N`...)
			continue
		case dataflow.KindInt:
			b = strconv.AppendInt(b, v.AsInt(), 10)
			continue
		}
		t := valueText(schema, i, v)
		for j := 0; j < len(t); j++ {
			switch c := t[j]; c {
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, c)
			}
		}
	}
	return append(b, '\n')
}

// valueText is v, field i of a record of schema, as PostgreSQL reads it from text: bytes as
// bytea's hex form, a nested record as a JSON object (for a json or jsonb column).
func valueText(schema dataflow.Schema, i int, v dataflow.Value) string {
	switch v.Kind() {
	case dataflow.KindBytes:
		return `\x` + hex.EncodeToString([]byte(v.AsString()))
	case dataflow.KindStruct:
		var sub dataflow.Schema
		if i < len(schema) {
			sub = schema[i].Fields
		}
		if r, err := v.Fields(nil); err == nil {
			return string(dataflow.AppendJSONRecord(nil, sub, r))
		}
	}
	return v.Text()
}

// addUpsertRow keeps the row, replacing an earlier row of the same key in the batch (one
// INSERT ... ON CONFLICT cannot update a row twice).
func (s *sink) addUpsertRow(r dataflow.Record) {
	row := make([][]byte, len(r))
	for i, v := range r {
		if v.Kind() != dataflow.KindNull {
			row[i] = []byte(valueText(s.opts.in, i, v))
		}
	}
	s.keyBuf = s.keyBuf[:0]
	for _, i := range s.opts.keyIdx {
		if row[i] == nil {
			s.keyBuf = append(s.keyBuf, 0)
		} else {
			s.keyBuf = strconv.AppendInt(append(s.keyBuf, 1), int64(len(row[i])), 10)
			s.keyBuf = append(append(s.keyBuf, ':'), row[i]...)
		}
	}
	if j, ok := s.rowOfKey[string(s.keyBuf)]; ok {
		s.rows[j] = row
		return
	}
	s.rowOfKey[string(s.keyBuf)] = len(s.rows)
	s.rows = append(s.rows, row)
}

// upsert writes the batch's rows in statements of up to 1000 rows (and 65535 parameters).
func (s *sink) upsert(ctx context.Context) error {
	n := len(s.opts.columns)
	per := min(1000, 65535/n)
	for start := 0; start < len(s.rows); start += per {
		rows := s.rows[start:min(start+per, len(s.rows))]
		params := make([][]byte, 0, len(rows)*n)
		for _, r := range rows {
			params = append(params, r...)
		}
		if _, err := s.conn.ExecParams(ctx, s.upsertSQL(len(rows)), params, nil, nil, nil).Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *sink) upsertSQL(rows int) string {
	o := s.opts
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(s.qualified)
	b.WriteString(" (")
	b.WriteString(quoteIdents(o.columns))
	b.WriteString(") VALUES ")
	p := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i := range o.columns {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d::%s", p, s.colTypes[i])
			p++
		}
		b.WriteByte(')')
	}
	b.WriteString(" ON CONFLICT (")
	b.WriteString(quoteIdents(o.Key))
	b.WriteString(") ")
	var set []string
	for _, c := range o.columns {
		if !slices.Contains(o.Key, c) {
			set = append(set, quoteIdent(c)+" = EXCLUDED."+quoteIdent(c))
		}
	}
	if len(set) == 0 {
		b.WriteString("DO NOTHING")
	} else {
		b.WriteString("DO UPDATE SET " + strings.Join(set, ", "))
	}
	return b.String()
}

// quoteIdents quotes each identifier and joins them with ", ".
func quoteIdents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

// SnapshotState implements dataflow.Snapshotter: at-least-once writes what is buffered, so
// the checkpoint covers it; exactly-once prepares the transaction.
func (s *sink) SnapshotState(cp dataflow.CheckpointInfo) (func(context.Context) error, error) {
	switch s.opts.DeliveryGuarantee {
	case DeliveryExactlyOnce:
		return s.tpc.SnapshotState(cp)
	case DeliveryAtLeastOnce:
		return nil, s.write()
	}
	return nil, nil
}

// NotifyCheckpointComplete implements dataflow.CheckpointListener.
func (s *sink) NotifyCheckpointComplete(id int64) error {
	if s.tpc == nil {
		return nil
	}
	return s.tpc.NotifyCheckpointComplete(id)
}

// NotifyCheckpointAborted implements dataflow.CheckpointListener.
func (s *sink) NotifyCheckpointAborted(id int64) error {
	if s.tpc == nil {
		return nil
	}
	return s.tpc.NotifyCheckpointAborted(id)
}

// Finish writes the rest; exactly-once commits it when checkpointing is off (else the final
// checkpoint does).
func (s *sink) Finish() error {
	if s.tpc != nil {
		return s.tpc.Finish()
	}
	return s.write()
}

// Close aborts the open transaction (prepared ones stay for a restore to resolve) and
// closes the connections.
func (s *sink) Close() error {
	s.abortCopy()
	if s.tpc != nil {
		_ = s.tpc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*pgconn.PgConn{s.conn, s.ctl} {
		if c != nil {
			_ = c.Close(ctx)
		}
	}
	s.conn, s.ctl = nil, nil
	return nil
}

// Transactions of exactly-once: a transaction is the gid it is prepared under, "" for one
// that wrote nothing (and is not prepared).

// gidPrefix starts the gids of a job's operator: sluice_<job>_<operator hash>_.
func gidPrefix(job, operator string) string {
	if job == "" {
		job = "local"
	}
	h := fnv.New64a()
	h.Write([]byte(operator))
	return fmt.Sprintf("sluice_%s_%016x_", sanitizeGid(job), h.Sum64())
}

func sanitizeGid(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// gid names the transaction a subtask prepares at checkpoint cp in an attempt of the job:
// stable, so a restore can commit it, and apart per attempt, so an attempt tells what an
// earlier one left prepared.
func (s *sink) gid(cp int64) string {
	return fmt.Sprintf("%s%d_%d_%d", s.gidPrefix, s.rc.Job.Attempt, s.rc.Subtask, cp)
}

// Begin implements dataflow.Transactions: the database transaction begins with the first write.
func (s *sink) Begin() (string, error) { return "", nil }

// Prepare implements dataflow.Transactions: write what is buffered, then PREPARE TRANSACTION.
func (s *sink) Prepare(_ string, cp dataflow.CheckpointInfo) (string, error) {
	if err := s.write(); err != nil {
		return "", err
	}
	if !s.inTx {
		return "", nil // nothing written since the last barrier
	}
	gid := s.gid(cp.ID)
	s.inTx = false
	if err := s.exec(s.ctx, "PREPARE TRANSACTION "+quoteLiteral(gid)); err != nil {
		return "", err
	}
	return gid, nil
}

// PreCommit implements dataflow.Transactions: a prepared transaction is durable already.
func (s *sink) PreCommit(string) error { return nil }

// Commit implements dataflow.Transactions: COMMIT PREPARED; a gid the server does not hold
// was committed already (by this or another subtask after a restore).
func (s *sink) Commit(gid string) error {
	if gid == "" {
		return nil
	}
	return s.finishPrepared("COMMIT PREPARED", gid)
}

// Abort implements dataflow.Transactions.
func (s *sink) Abort(gid string) error {
	if gid == "" {
		if s.inTx && s.conn != nil {
			s.inTx = false
			return s.exec(s.ctx, "ROLLBACK")
		}
		return nil
	}
	return s.finishPrepared("ROLLBACK PREPARED", gid)
}

func (s *sink) finishPrepared(verb, gid string) error {
	_, err := s.ctl.Exec(s.ctx, verb+" "+quoteLiteral(gid)).ReadAll()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42704" { // undefined_object: done already
		return nil
	}
	if err != nil {
		return s.explain(verb+" "+gid, err)
	}
	return nil
}

// Codec implements dataflow.Transactions.
func (s *sink) Codec() state.Codec[string] { return state.StringCodec }

// rollbackStale rolls back what earlier attempts of this job left prepared and the restored
// checkpoint does not hold (NewTwoPhaseCommit committed those): transactions of checkpoints
// that never completed.
func (s *sink) rollbackStale(ctx context.Context) error {
	if s.rc.Job.Attempt == 0 {
		return nil
	}
	res := s.ctl.ExecParams(ctx, "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)",
		[][]byte{[]byte(s.gidPrefix)}, nil, nil, nil).Read()
	if res.Err != nil {
		return s.explain("list prepared transactions", res.Err)
	}
	for _, r := range res.Rows {
		gid := string(r[0])
		attempt, _, _ := strings.Cut(strings.TrimPrefix(gid, s.gidPrefix), "_")
		if a, err := strconv.Atoi(attempt); err != nil || a >= s.rc.Job.Attempt {
			continue
		}
		if err := s.finishPrepared("ROLLBACK PREPARED", gid); err != nil {
			return err
		}
		s.log.Info("rolled back a transaction an earlier attempt prepared for a checkpoint that did not complete", "gid", gid)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
