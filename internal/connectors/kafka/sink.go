package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/state"
)

// kafkaSink writes its input to one topic. Delivery:
//   - none: records are sent as they come; what is buffered at a failure is lost.
//   - at-least-once: every barrier waits until the records before it are acknowledged, so a
//     completed checkpoint never covers a record Kafka does not have.
//   - exactly-once: a Kafka transaction per checkpoint and subtask (dataflow.TwoPhaseCommit); the
//     barrier flushes it, the checkpoint's completion commits it, and a restore commits
//     what the checkpoint prepared and aborts what the failed attempt left open.
type kafkaSink struct {
	opts *Options
	rc   *dataflow.RuntimeContext
	eval *dataflow.Evaluator
	opt  []kgo.Opt

	cl  *kgo.Client // none / at-least-once
	tpc *dataflow.TwoPhaseCommit[*kafkaTxn]
	txs *kafkaTxns

	errMu sync.Mutex
	err   error // the first failed produce

	buf []byte
}

func (s *kafkaSink) Open(ctx context.Context, rc *dataflow.RuntimeContext) error {
	k := s.opts
	s.rc = rc
	if k.keyExpr != nil {
		s.eval = rc.NewEvaluator(k.schema)
	}
	opts, err := kafkaClientOptions(ctx, rc, k)
	if err != nil {
		return err
	}
	s.opt = append(opts, kgo.DefaultProduceTopic(k.Topic[0]), kgo.RecordRetries(10),
		kgo.UnknownTopicRetries(3), kgo.ProducerLinger(5*time.Millisecond))
	tuning, err := ProducerOptions(k.Properties)
	if err != nil {
		return dataflow.Unrecoverable(dataflow.OperatorError(rc.Operator, err))
	}
	s.opt = append(s.opt, tuning...)
	if d, ok, err := k.Properties.Millis(LingerMS); err != nil {
		return dataflow.Unrecoverable(dataflow.OperatorError(rc.Operator, err))
	} else if ok {
		s.opt = append(s.opt, kgo.ProducerLinger(d))
	}
	if k.Delivery != deliveryExactlyOnce {
		if s.cl, err = kgo.NewClient(s.opt...); err != nil {
			return kafkaFailure(rc, fmt.Errorf("kafka producer: %w", err))
		}
		// Fail at Open on a refused login, topic or ACL rather than at the first record.
		if err := s.probe(ctx, s.cl); err != nil {
			return err
		}
		return nil
	}
	timeout := 15 * time.Minute // Kafka's default transaction.max.timeout.ms
	if d, ok, err := k.Properties.Millis(TransactionTimeoutMS); err != nil {
		return dataflow.Unrecoverable(dataflow.OperatorError(rc.Operator, err))
	} else if ok {
		timeout = d // at most kafka.MaxTransactionTimeout: fits the request's int32
	}
	admin, err := kgo.NewClient(opts...)
	if err != nil {
		return kafkaFailure(rc, fmt.Errorf("kafka client: %w", err))
	}
	if err := s.probe(ctx, admin); err != nil {
		admin.Close()
		return err
	}
	if !rc.Checkpointing {
		rc.Logger.Warn("kafka sink: exactly-once without checkpointing commits only at the end of the input (execution.checkpointing.interval is not set)", "topic", k.Topic[0])
	}
	s.txs = &kafkaTxns{sink: s, admin: admin, timeout: timeout, prefix: k.TxnPrefix + "-" + strconv.Itoa(rc.Subtask) + "-"}
	if err := s.txs.recover(ctx); err != nil {
		return kafkaFailure(rc, err)
	}
	if s.tpc, err = dataflow.NewTwoPhaseCommit[*kafkaTxn](rc, s.txs); err != nil {
		return kafkaFailure(rc, err)
	}
	return nil
}

// probe asks for the topic's metadata, so a refused login or topic fails the task at Open
// with a message naming them.
func (s *kafkaSink) probe(ctx context.Context, cl *kgo.Client) error {
	t := s.opts.Topic[0]
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(t)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(pctx, cl)
	if err == nil {
		for _, mt := range resp.Topics {
			if err = kerr.ErrorForCode(mt.ErrorCode); err != nil {
				break
			}
		}
	}
	if err != nil {
		return kafkaFailure(s.rc, kafkaExplain(s.opts, err, "topic %s", t))
	}
	return nil
}

// Process implements dataflow.Operator.
func (s *kafkaSink) Process(_ int, e *dataflow.Element) error {
	if err := s.failed(); err != nil {
		return err
	}
	k := s.opts
	r := e.Record
	s.buf = appendKafkaValue(s.buf[:0], k.Format, k.schema, r, rawIndex(k))
	rec := &kgo.Record{Value: append([]byte(nil), s.buf...)}
	switch {
	case k.keyExpr != nil:
		v, err := s.eval.Eval(k.keyExpr, r)
		if err != nil {
			return dataflow.OperatorError(s.rc.Operator, fmt.Errorf("key: %w", err))
		}
		if v.Kind() != dataflow.KindNull {
			rec.Key = []byte(v.Text())
		}
	case len(k.keyIdx) > 0:
		rec.Key = appendKafkaValue(nil, k.KeyFormat, k.schema, r, k.keyIdx)
	}
	for j, i := range k.headerIdx {
		if r[i].Kind() != dataflow.KindNull {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k.Headers[j], Value: []byte(r[i].Text())})
		}
	}
	if e.HasTimestamp() {
		rec.Timestamp = time.UnixMilli(e.Timestamp)
	}
	cl := s.cl
	if s.tpc != nil {
		txn := s.tpc.Current()
		cl = txn.cl
		txn.records++
	}
	cl.Produce(s.rc.Context(), rec, s.produced)
	return nil
}

func rawIndex(k *Options) []int {
	if k.Format == "raw" {
		return []int{k.valueIdx}
	}
	return nil
}

// produced records the first failed produce; Process, the barrier and Finish report it.
func (s *kafkaSink) produced(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *kafkaSink) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		return nil
	}
	return kafkaFailure(s.rc, kafkaExplain(s.opts, s.err, "write to topic %s", s.opts.Topic[0]))
}

// SnapshotState implements dataflow.Snapshotter.
func (s *kafkaSink) SnapshotState(cp dataflow.CheckpointInfo) (func(context.Context) error, error) {
	switch {
	case s.tpc != nil:
		return s.tpc.SnapshotState(cp)
	case s.opts.Delivery == deliveryAtLeastOnce:
		if err := s.cl.Flush(s.rc.Context()); err != nil {
			return nil, err
		}
		return nil, s.failed()
	}
	return nil, nil
}

// NotifyCheckpointComplete implements dataflow.CheckpointListener.
func (s *kafkaSink) NotifyCheckpointComplete(id int64) error {
	if s.tpc == nil {
		return nil
	}
	return kafkaFailure(s.rc, s.tpc.NotifyCheckpointComplete(id))
}

// NotifyCheckpointAborted implements dataflow.CheckpointListener.
func (s *kafkaSink) NotifyCheckpointAborted(id int64) error {
	if s.tpc == nil {
		return nil
	}
	return s.tpc.NotifyCheckpointAborted(id)
}

func (s *kafkaSink) Finish() error {
	if s.tpc != nil {
		return kafkaFailure(s.rc, s.tpc.Finish())
	}
	if err := s.cl.Flush(s.rc.Context()); err != nil {
		return kafkaFailure(s.rc, err)
	}
	return s.failed()
}

func (s *kafkaSink) Close() error {
	var err error
	if s.tpc != nil {
		err = s.tpc.Close()
		// Prepared transactions stay open for a restore to commit; only their clients go.
		for _, t := range s.tpc.Pending() {
			if t.cl != nil {
				t.cl.Close()
				t.cl = nil
			}
		}
	}
	if s.txs != nil {
		s.txs.admin.Close()
	}
	if s.cl != nil {
		s.cl.Close()
	}
	return err
}

// kafkaTxn is one Kafka transaction of a sink subtask. Its transactional id is
// PREFIX-SUBTASK-N with N counting the subtask's transactions: ids are never reused, so a
// prepared transaction can be committed by its producer id and epoch after its producer
// died (Flink's KafkaSink does the same).
type kafkaTxn struct {
	id         string
	n          int64
	producerID int64
	epoch      int16
	records    int64
	cl         *kgo.Client // nil for a transaction restored from a checkpoint
}

// kafkaTxns implements dataflow.Transactions for the sink.
type kafkaTxns struct {
	sink    *kafkaSink
	admin   *kgo.Client
	timeout time.Duration
	prefix  string // PREFIX-SUBTASK-
	next    int64  // N of the next transaction
}

// recover aborts the transactions a failed attempt (or an earlier run with the same
// prefix) left open, so read_committed consumers are not held up until they time out, and
// finds the first unused transactional id. Prepared transactions the restored checkpoint
// holds are not touched here: NewTwoPhaseCommit commits them. After a restore at a lower
// parallelism, subtask i also cleans up after the old subtasks j >= parallelism with
// j % parallelism == i, which no longer run.
func (x *kafkaTxns) recover(ctx context.Context) error {
	rc := x.sink.rc
	base := x.sink.opts.TxnPrefix + "-"
	last := map[int]int64{} // old subtask -> the last transaction number the checkpoint holds
	restored, err := dataflow.RestoredTransactions(rc, x.Codec())
	if err != nil {
		return err
	}
	for _, t := range restored {
		sub, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(t.id, base), "-"+strconv.FormatInt(t.n, 10)))
		if err == nil && t.n > last[sub] {
			last[sub] = t.n
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for sub, n := range last {
		if sub != rc.Subtask && sub >= rc.Parallelism && sub%rc.Parallelism == rc.Subtask {
			if _, err := x.abortFrom(ctx, base+strconv.Itoa(sub)+"-", n+1); err != nil {
				return err
			}
		}
	}
	next, err := x.abortFrom(ctx, x.prefix, last[rc.Subtask]+1)
	if err != nil {
		return err
	}
	x.next = next
	return nil
}

// abortFrom fences the transactional ids prefix+N from N = start on, which aborts any
// transaction open under them, until an id no producer used before; it returns that N.
func (x *kafkaTxns) abortFrom(ctx context.Context, prefix string, start int64) (int64, error) {
	for n := start; ; n++ {
		id := prefix + strconv.FormatInt(n, 10)
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = int32(x.timeout / time.Millisecond)
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, x.admin)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if errors.Is(err, kerr.ConcurrentTransactions) || errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.NotCoordinator) {
			// Kafka aborts the open transaction first and asks to be asked again.
			select {
			case <-ctx.Done():
				return 0, kafkaExplain(x.sink.opts, err, "transactional id %s", id)
			case <-time.After(100 * time.Millisecond):
			}
			n--
			continue
		}
		if err != nil {
			return 0, kafkaExplain(x.sink.opts, err, "transactional id %s", id)
		}
		// A new id starts at epoch 0: no earlier producer used it, nor any after it.
		if resp.ProducerEpoch == 0 {
			if n > start {
				x.sink.rc.Logger.Info("kafka sink aborted transactions left open", "from", prefix+strconv.FormatInt(start, 10), "count", n-start)
			}
			return n, nil
		}
	}
}

// Begin implements dataflow.Transactions: a transactional producer with the next id.
func (x *kafkaTxns) Begin() (*kafkaTxn, error) {
	n := x.next
	x.next++
	id := x.prefix + strconv.FormatInt(n, 10)
	cl, err := kgo.NewClient(append(x.sink.opt, kgo.TransactionalID(id), kgo.TransactionTimeout(x.timeout))...)
	if err != nil {
		return nil, fmt.Errorf("transactional producer %s: %w", id, err)
	}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("begin transaction %s: %w", id, err)
	}
	return &kafkaTxn{id: id, n: n, cl: cl, producerID: -1}, nil
}

// Prepare implements dataflow.Transactions: flush, and note the producer id and epoch a later
// commit needs.
func (x *kafkaTxns) Prepare(t *kafkaTxn, _ dataflow.CheckpointInfo) (*kafkaTxn, error) {
	ctx := x.sink.rc.Context()
	if err := t.cl.Flush(ctx); err != nil {
		return t, err
	}
	if err := x.sink.failed(); err != nil {
		return t, err
	}
	if t.records > 0 {
		pid, epoch, err := t.cl.ProducerID(ctx)
		if err != nil {
			return t, kafkaExplain(x.sink.opts, err, "transactional id %s", t.id)
		}
		t.producerID, t.epoch = pid, epoch
	}
	return t, nil
}

// PreCommit implements dataflow.Transactions: flushed records are durable in Kafka already.
func (x *kafkaTxns) PreCommit(*kafkaTxn) error { return nil }

// Commit implements dataflow.Transactions. A restored transaction is committed by its producer id
// and epoch (EndTxn), as its producer is gone; committing one committed before is a no-op.
func (x *kafkaTxns) Commit(t *kafkaTxn) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if t.cl != nil {
		defer func() { t.cl.Close(); t.cl = nil }()
		if t.records == 0 {
			return nil
		}
		if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return kafkaExplain(x.sink.opts, err, "commit transaction %s", t.id)
		}
		return nil
	}
	if t.records == 0 || t.producerID < 0 {
		return nil
	}
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = t.id, t.producerID, t.epoch, true
	for {
		resp, err := req.RequestWith(ctx, x.admin)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, kerr.ConcurrentTransactions) || errors.Is(err, kerr.CoordinatorLoadInProgress):
			// Another subtask restoring the same checkpoint commits it right now.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case errors.Is(err, kerr.InvalidTxnState):
			// Committed before (by this sink before the failure, or another subtask now).
			return nil
		}
		return kafkaExplain(x.sink.opts, err, "commit restored transaction %s", t.id)
	}
}

// Abort implements dataflow.Transactions.
func (x *kafkaTxns) Abort(t *kafkaTxn) error {
	if t.cl == nil {
		return nil
	}
	defer func() { t.cl.Close(); t.cl = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.cl.AbortBufferedRecords(ctx); err != nil {
		return err
	}
	if t.records == 0 {
		return nil
	}
	return t.cl.EndTransaction(ctx, kgo.TryAbort)
}

// Codec implements dataflow.Transactions.
func (x *kafkaTxns) Codec() state.Codec[*kafkaTxn] { return kafkaTxnCodec{} }

type kafkaTxnCodec struct{}

func (kafkaTxnCodec) Append(dst []byte, t *kafkaTxn) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t.id)))
	dst = append(dst, t.id...)
	dst = binary.AppendVarint(dst, t.n)
	dst = binary.AppendVarint(dst, t.producerID)
	dst = binary.AppendVarint(dst, int64(t.epoch))
	return binary.AppendVarint(dst, t.records)
}

func (kafkaTxnCodec) Decode(b []byte) (*kafkaTxn, error) {
	n, i := binary.Uvarint(b)
	if i <= 0 || uint64(len(b)-i) < n {
		return nil, errors.New("kafka transaction: malformed id")
	}
	t := &kafkaTxn{id: string(b[i : i+int(n)])}
	b = b[i+int(n):]
	var vals [4]int64
	for j := range vals {
		v, m := binary.Varint(b)
		if m <= 0 {
			return nil, errors.New("kafka transaction: malformed field")
		}
		vals[j], b = v, b[m:]
	}
	t.n, t.producerID, t.epoch, t.records = vals[0], vals[1], int16(vals[2]), vals[3]
	return t, nil
}
