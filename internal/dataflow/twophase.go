package dataflow

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/sluice-dev/sluice/internal/state"
)

// Transactions is the storage side of a two-phase-commit sink (docs/architecture.md §6.8):
// records after a barrier go into a transaction, which the barrier prepares (durable but
// invisible) and the checkpoint's completion commits.
type Transactions[T any] interface {
	// Begin starts a transaction for the records after a barrier.
	Begin() (T, error)
	// Prepare ends txn at barrier cp, in the task goroutine: flush what is buffered and
	// name what the commit will make visible. It returns the transaction as it is kept
	// pending (and in state). cp.ID is 0 when a sink without checkpointing commits at the
	// end of its input.
	Prepare(txn T, cp CheckpointInfo) (T, error)
	// PreCommit makes a prepared txn durable; it runs concurrently with processing, in the
	// asynchronous part of the snapshot (fsync).
	PreCommit(txn T) error
	// Commit makes txn visible. It is idempotent: after a recovery it may run again, on a
	// transaction committed before or restored in another process.
	Commit(txn T) error
	// Abort discards an uncommitted transaction.
	Abort(txn T) error
	// Codec encodes pending transactions in the sink's union list state.
	Codec() state.Codec[T]
}

// TwoPhaseCommit drives Transactions from the checkpoint lifecycle; a sink keeps one, writes
// into Current(), and forwards SnapshotState, NotifyCheckpointComplete,
// NotifyCheckpointAborted, Finish and Close to it.
type TwoPhaseCommit[T any] struct {
	rc      *RuntimeContext
	tx      Transactions[T]
	codec   state.Codec[T]
	list    *state.ListState
	cur     T
	open    bool // cur is a begun, unprepared transaction
	pending []pendingTxn[T]
}

type pendingTxn[T any] struct {
	id  int64 // the checkpoint that prepared it
	txn T
}

// pendingTransactions is the name of the union list state of a two-phase-commit sink.
const pendingTransactions = "pending-transactions"

// NewTwoPhaseCommit restores the sink's pending transactions, committing every one the
// restored checkpoint holds (every subtask gets all of them, so a commit lost with a failed
// process happens now; Commit is idempotent), and begins the first transaction. Call it
// from Open.
func NewTwoPhaseCommit[T any](rc *RuntimeContext, tx Transactions[T]) (*TwoPhaseCommit[T], error) {
	list, err := rc.ListState(pendingTransactions, state.Union)
	if err != nil {
		return nil, err
	}
	c := &TwoPhaseCommit[T]{rc: rc, tx: tx, codec: tx.Codec(), list: list}
	if rc.Restored > 0 {
		for i, e := range list.Entries() {
			id, n := binary.Uvarint(e)
			if n <= 0 {
				return nil, fmt.Errorf("restore pending transaction %d of checkpoint %d: malformed checkpoint id", i, rc.Restored)
			}
			txn, err := c.codec.Decode(e[n:])
			if err != nil {
				return nil, fmt.Errorf("restore pending transaction %d of checkpoint %d: %w", i, rc.Restored, err)
			}
			if int64(id) > rc.Restored {
				// Cannot be: a checkpoint holds what it and earlier ones prepared.
				return nil, fmt.Errorf("restore pending transaction %d: prepared by checkpoint %d, after the checkpoint %d restored", i, id, rc.Restored)
			}
			if err := tx.Commit(txn); err != nil {
				return nil, fmt.Errorf("commit transaction of checkpoint %d restored from checkpoint %d: %w", id, rc.Restored, err)
			}
		}
		list.Update(nil)
	}
	if c.cur, err = tx.Begin(); err != nil {
		return nil, err
	}
	c.open = true
	return c, nil
}

// RestoredTransactions are the pending transactions the restored checkpoint holds for a
// two-phase-commit sink (every subtask's: the state is a union), decoded with codec and not
// committed; nil on a fresh start. A sink that cleans up around them (the Kafka sink fences
// the transactional ids a failed attempt may have used after them) reads them in Open before
// NewTwoPhaseCommit commits them. Entries that do not decode are left out: NewTwoPhaseCommit
// reports them.
func RestoredTransactions[T any](rc *RuntimeContext, codec state.Codec[T]) ([]T, error) {
	if rc.Restored <= 0 {
		return nil, nil
	}
	list, err := rc.ListState(pendingTransactions, state.Union)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, e := range list.Entries() {
		_, n := binary.Uvarint(e)
		if n <= 0 {
			continue
		}
		if txn, err := codec.Decode(e[n:]); err == nil {
			out = append(out, txn)
		}
	}
	return out, nil
}

// Pending are the prepared transactions not committed yet, oldest first: on Close they stay
// open for a restore to commit, and the sink may release what they hold in this process.
func (c *TwoPhaseCommit[T]) Pending() []T {
	out := make([]T, len(c.pending))
	for i, p := range c.pending {
		out[i] = p.txn
	}
	return out
}

// Current is the transaction records go into now.
func (c *TwoPhaseCommit[T]) Current() T { return c.cur }

// SnapshotState prepares the current transaction at barrier cp, keeps it pending, records
// every pending transaction in the union list state and begins the next; the function it
// returns makes the prepared transaction durable.
func (c *TwoPhaseCommit[T]) SnapshotState(cp CheckpointInfo) (func(context.Context) error, error) {
	if !c.open {
		return nil, fmt.Errorf("snapshot %d: no open transaction", cp.ID)
	}
	prepared, err := c.tx.Prepare(c.cur, cp)
	c.open = false
	if err != nil {
		return nil, fmt.Errorf("prepare transaction for checkpoint %d: %w", cp.ID, err)
	}
	c.pending = append(c.pending, pendingTxn[T]{id: cp.ID, txn: prepared})
	c.record()
	if c.cur, err = c.tx.Begin(); err != nil {
		return nil, err
	}
	c.open = true
	return func(context.Context) error { return c.tx.PreCommit(prepared) }, nil
}

// record writes the pending transactions into the list state.
func (c *TwoPhaseCommit[T]) record() {
	entries := make([][]byte, len(c.pending))
	for i, p := range c.pending {
		entries[i] = c.codec.Append(binary.AppendUvarint(nil, uint64(p.id)), p.txn)
	}
	c.list.Update(entries)
}

// NotifyCheckpointComplete commits the pending transactions of checkpoint id and earlier.
func (c *TwoPhaseCommit[T]) NotifyCheckpointComplete(id int64) error {
	kept := c.pending[:0]
	var first error
	for _, p := range c.pending {
		if p.id > id {
			kept = append(kept, p)
			continue
		}
		if err := c.tx.Commit(p.txn); err != nil && first == nil {
			first = fmt.Errorf("commit transaction of checkpoint %d: %w", p.id, err)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	c.record()
	return first
}

// NotifyCheckpointAborted keeps the pending transactions: the next completed checkpoint
// commits them.
func (c *TwoPhaseCommit[T]) NotifyCheckpointAborted(int64) error { return nil }

// Finish commits at the end of input when checkpointing is off: the current transaction
// (prepared with checkpoint id 0) and anything a savepoint left pending. With checkpointing
// the final checkpoint, taken after the task finished, commits it instead.
func (c *TwoPhaseCommit[T]) Finish() error {
	if c.rc.Checkpointing {
		return nil
	}
	if err := c.NotifyCheckpointComplete(1<<63 - 1); err != nil {
		return err
	}
	if !c.open {
		return nil
	}
	c.open = false
	txn, err := c.tx.Prepare(c.cur, CheckpointInfo{})
	if err == nil {
		err = c.tx.PreCommit(txn)
	}
	if err == nil {
		err = c.tx.Commit(txn)
	}
	if err != nil {
		_ = c.tx.Abort(txn)
	}
	return err
}

// Close aborts the current transaction; prepared ones stay for a restore to commit.
func (c *TwoPhaseCommit[T]) Close() error {
	if !c.open {
		return nil
	}
	c.open = false
	return c.tx.Abort(c.cur)
}
