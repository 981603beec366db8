package dataflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// Snapshotter is an operator with state outside keyed state: a source's positions, a sink's
// pending transactions. SnapshotState runs in the task goroutine after the barrier went
// downstream and before the task copies the operator's list states, so it updates them
// here; the function it may return runs concurrently with processing, in a goroutine the
// task owns, and must finish before the checkpoint is acknowledged (a sink's fsync).
type Snapshotter interface {
	SnapshotState(cp CheckpointInfo) (async func(ctx context.Context) error, err error)
}

// operatorLists are the list states of one operator of a chain.
type operatorLists struct {
	restored map[string]restoredList // from the checkpoint restored, by name
	lists    []*state.ListState      // registered, in order
}

type restoredList struct {
	mode    state.Redistribution
	entries [][]byte
}

// ListState returns the operator's list state name, holding its restored entries (with
// mode as restored) or none on a fresh start. Entries are snapshotted at every barrier,
// after SnapshotState. Asking for a name again returns the same list; asking with another
// mode than the list has (or was restored with) is an error.
func (rc *RuntimeContext) ListState(name string, mode state.Redistribution) (*state.ListState, error) {
	if mode != state.Split && mode != state.Union {
		return nil, fmt.Errorf("list state %q: unknown redistribution %d", name, mode)
	}
	if name == "" || len(name) > state.MaxNameLen {
		return nil, fmt.Errorf("list state name %q: want 1..%d bytes", name, state.MaxNameLen)
	}
	if rc.lists == nil {
		rc.lists = &operatorLists{}
	}
	for _, l := range rc.lists.lists {
		if l.Name() == name {
			if l.Mode() != mode {
				return nil, fmt.Errorf("list state %q is %v, asked for as %v", name, l.Mode(), mode)
			}
			return l, nil
		}
	}
	var entries [][]byte
	if r, ok := rc.lists.restored[name]; ok {
		if r.mode != mode {
			return nil, fmt.Errorf("list state %q was restored as %v state, asked for as %v: the operator's state does not match the checkpoint", name, r.mode, mode)
		}
		entries = r.entries
	}
	l := state.NewListState(name, mode, entries)
	rc.lists.lists = append(rc.lists.lists, l)
	return l, nil
}

// restoredList reports whether list name was restored (with entries for this subtask or
// not): a source then reads the splits it was given, not its fresh range.
func (rc *RuntimeContext) restoredList(name string) bool {
	if rc.lists == nil {
		return false
	}
	_, ok := rc.lists.restored[name]
	return ok
}

// opSnapshot is the synchronous result of snapshotting one operator of the chain.
type opSnapshot struct {
	name  string
	index int // in the spec: the prefix of its files' names
	keyed state.Snapshot
	lists []listCopy
	async func(ctx context.Context) error
}

type listCopy struct {
	name    string
	mode    state.Redistribution
	entries [][]byte
}

// snapshot takes checkpoint b of the chain: BARRIER b downstream first, then the synchronous
// part of every operator in the task goroutine, then the asynchronous part in a goroutine
// the task owns, which acknowledges or declines. A failure to snapshot declines the
// checkpoint and cancels it downstream; only a failure to send the barrier fails the task.
func (t *task) snapshot(b event.Barrier, alignment time.Duration) error {
	if err := t.out.broadcast(event.Event{Kind: event.KindBarrier, Barrier: b}); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	if t.finished && t.finalID == 0 && t.cp.Periodic {
		t.finalID = b.ID
	}
	info := checkpoint.Info{ID: b.ID, Timestamp: time.UnixMilli(b.Timestamp), Type: b.Type}
	start := time.Now()
	parts, err := t.snapshotSync(info)
	if err != nil {
		return t.decline(b.ID, err.Error())
	}
	files, err := t.cp.Files(info)
	if err != nil {
		releaseAll(parts)
		return t.decline(b.ID, fmt.Sprintf("snapshot files: %v", err))
	}
	m := CheckpointMetrics{Alignment: alignment, Sync: time.Since(start)}
	finished := t.finished
	t.async.Add(1)
	go func() {
		defer t.async.Done()
		t.snapshotAsync(info, files, parts, m, finished)
	}()
	return nil
}

// snapshotSync runs the synchronous part of every operator of the chain.
func (t *task) snapshotSync(info checkpoint.Info) ([]opSnapshot, error) {
	parts := make([]opSnapshot, len(t.chain))
	for i, l := range t.chain {
		p := &parts[i]
		p.name, p.index = l.name, t.opIndex[i]
		if i == 0 && t.keyed != nil {
			s, err := t.keyed.Snapshot(state.SnapshotInfo{ID: info.ID, Timestamp: info.Timestamp})
			if err != nil {
				releaseAll(parts)
				return nil, fmt.Errorf("operator %q: keyed state snapshot: %v", l.name, err)
			}
			p.keyed = s
		}
		if sn, ok := l.op.(Snapshotter); ok {
			async, err := sn.SnapshotState(info)
			if err != nil {
				releaseAll(parts)
				return nil, fmt.Errorf("operator %q: snapshot: %v", l.name, err)
			}
			p.async = async
		}
		if ls := t.lists[i]; ls != nil {
			for _, l := range ls.lists {
				// Update replaces the slice, so copying the slice header keeps what the
				// operator has now whatever it updates while the snapshot is written.
				p.lists = append(p.lists, listCopy{name: l.Name(), mode: l.Mode(), entries: l.Entries()})
			}
		}
	}
	return parts, nil
}

func releaseAll(parts []opSnapshot) {
	for i := range parts {
		if parts[i].keyed != nil {
			parts[i].keyed.Release()
			parts[i].keyed = nil
		}
	}
}

// snapshotAsync writes the snapshot's files and runs the operators' asynchronous parts, then
// acknowledges the checkpoint, or declines it and has the task cancel it downstream.
func (t *task) snapshotAsync(info checkpoint.Info, files checkpoint.SnapshotFiles, parts []opSnapshot, m CheckpointMetrics, finished bool) {
	start := time.Now()
	defer releaseAll(parts)
	ops := make(map[string]checkpoint.SubtaskState, len(parts))
	err := func() error {
		for i := range parts {
			p := &parts[i]
			st := checkpoint.SubtaskState{Finished: finished}
			if p.keyed != nil {
				h, size, written, err := writeKeyed(t.asyncCtx, files, info.ID, checkpoint.StateFile(p.index, t.subtask, checkpoint.KindKeyed), p.keyed)
				if err != nil {
					return fmt.Errorf("operator %q: %w", p.name, err)
				}
				st.Keyed, m.Size, m.Written = h, m.Size+size, m.Written+written
			}
			if len(p.lists) > 0 {
				h, size, err := writeLists(files, checkpoint.StateFile(p.index, t.subtask, checkpoint.KindOperator), p.lists)
				if err != nil {
					return fmt.Errorf("operator %q: %w", p.name, err)
				}
				st.Operator, m.Size, m.Written = h, m.Size+size, m.Written+size
			}
			if p.async != nil {
				if err := p.async(t.asyncCtx); err != nil {
					return fmt.Errorf("operator %q: snapshot: %w", p.name, err)
				}
			}
			ops[p.name] = st
		}
		return nil
	}()
	if err != nil {
		if t.asyncCtx.Err() != nil {
			return // the task is going away; its checkpoint goes with the attempt
		}
		t.cp.Decline(info.ID, err.Error())
		t.mail.Post(Mail{Kind: mailCancelDownstream, ID: info.ID})
		return
	}
	m.Async = time.Since(start)
	t.cp.Ack(info, ops, m)
}

// writeKeyed writes a keyed snapshot of checkpoint id as the file name. It
// returns the bytes the snapshot references and those it wrote: an
// incremental snapshot references shared files that earlier checkpoints
// wrote (FileRef.SealedFor names the one that did).
func writeKeyed(ctx context.Context, files checkpoint.SnapshotFiles, id int64, name string, s state.Snapshot) (*checkpoint.KeyedHandle, int64, int64, error) {
	if fs, ok := s.(state.FileSnapshot); ok && files.SharedAllowed() {
		// A checkpoint of a backend with native files (pebble): its files,
		// uploaded or, when incremental, referenced. Savepoints take the
		// canonical stream below, so they restore into any backend.
		h, err := fs.WriteFiles(ctx, files, strings.TrimSuffix(name, "-"+checkpoint.KindKeyed))
		if err != nil {
			return nil, 0, 0, fmt.Errorf("write keyed state files %s: %w", name, err)
		}
		var size, written int64
		for _, f := range h.Files {
			size += f.Size
			if f.SealedFor == 0 || f.SealedFor == id {
				written += f.Size
			}
		}
		return h, size, written, nil
	}
	w, err := files.Create(name)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("create keyed state file %s: %w", name, err)
	}
	h, err := s.Write(ctx, w)
	if err != nil {
		w.Abort()
		return nil, 0, 0, fmt.Errorf("write keyed state file %s: %w", name, err)
	}
	ref, err := w.Commit()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("commit keyed state file %s: %w", name, err)
	}
	kh := &checkpoint.KeyedHandle{Format: h.Format, KeyGroups: keygroup.Range(h.KeyGroups), Offsets: h.Offsets,
		States: make([]checkpoint.StateInfo, len(h.States)), Files: []checkpoint.FileRef{ref}}
	for i, st := range h.States {
		kh.States[i] = checkpoint.StateInfo{Name: st.Name, Kind: st.Kind.String()}
	}
	return kh, ref.Size, ref.Size, nil
}

// The operator state file ("SLOS", docs/architecture.md §5.4), one per operator subtask:
//
//	"SLOS" u8 version=1
//	per list: uvarint len, name, u8 mode (1 split, 2 union), uvarint count,
//	          count x (uvarint len, entry)
const (
	listsMagic   = "SLOS"
	listsVersion = 1
	// maxListsFile bounds what a restore reads of one operator state file: it is input
	// from disk, read before anything in it is trusted.
	maxListsFile = 1 << 30
)

// writeLists writes the list states of one operator as the file name.
func writeLists(files checkpoint.SnapshotFiles, name string, lists []listCopy) (*checkpoint.ListsHandle, int64, error) {
	total := 0
	for _, l := range lists {
		total += len(l.entries)
	}
	if total > checkpoint.MaxListEntries {
		return nil, 0, fmt.Errorf("operator state file %s: %d list entries, at most %d: a restore would refuse it", name, total, checkpoint.MaxListEntries)
	}
	w, err := files.Create(name)
	if err != nil {
		return nil, 0, fmt.Errorf("create operator state file %s: %w", name, err)
	}
	bw := bufio.NewWriter(w)
	h := &checkpoint.ListsHandle{}
	var scratch []byte
	scratch = append(append(scratch, listsMagic...), listsVersion)
	for _, l := range lists {
		scratch = binary.AppendUvarint(scratch, uint64(len(l.name)))
		scratch = append(append(scratch, l.name...), byte(l.mode))
		scratch = binary.AppendUvarint(scratch, uint64(len(l.entries)))
		for _, e := range l.entries {
			scratch = binary.AppendUvarint(scratch, uint64(len(e)))
			if _, err := bw.Write(scratch); err != nil {
				w.Abort()
				return nil, 0, fmt.Errorf("write operator state file %s: %w", name, err)
			}
			scratch = scratch[:0]
			if _, err := bw.Write(e); err != nil {
				w.Abort()
				return nil, 0, fmt.Errorf("write operator state file %s: %w", name, err)
			}
		}
		h.Lists = append(h.Lists, checkpoint.ListInfo{Name: l.name, Mode: l.mode.String(), Count: int64(len(l.entries))})
	}
	_, err = bw.Write(scratch)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		w.Abort()
		return nil, 0, fmt.Errorf("write operator state file %s: %w", name, err)
	}
	ref, err := w.Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("commit operator state file %s: %w", name, err)
	}
	h.File = ref
	return h, ref.Size, nil
}

// readLists parses an operator state file; name is its path, for errors.
func readLists(b []byte, name string) (map[string]listCopy, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("operator state file %s: "+format, append([]any{name}, a...)...)
	}
	if len(b) < len(listsMagic)+1 || string(b[:len(listsMagic)]) != listsMagic {
		return nil, fail("not an operator state file")
	}
	if v := b[len(listsMagic)]; v != listsVersion {
		return nil, fail("version %d, this sluice reads version %d", v, listsVersion)
	}
	b = b[len(listsMagic)+1:]
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fail("truncated or malformed %s", what)
		}
		b = b[n:]
		return v, nil
	}
	out := map[string]listCopy{}
	entries := uint64(0) // in all lists: each costs a slice header, maybe for one byte of file
	for len(b) > 0 {
		n, err := uv("list name length")
		if err != nil {
			return nil, err
		}
		if n == 0 || n > state.MaxNameLen || n >= uint64(len(b)) {
			return nil, fail("list name of %d bytes", n)
		}
		l := listCopy{name: string(b[:n]), mode: state.Redistribution(b[n])}
		b = b[n+1:]
		if l.mode != state.Split && l.mode != state.Union {
			return nil, fail("list %q: unknown mode %d", l.name, l.mode)
		}
		if _, dup := out[l.name]; dup {
			return nil, fail("list %q twice", l.name)
		}
		count, err := uv("entry count")
		if err != nil {
			return nil, err
		}
		if count > uint64(len(b)) { // every entry takes at least its length byte
			return nil, fail("list %q: %d entries in %d bytes", l.name, count, len(b))
		}
		if entries += count; entries > checkpoint.MaxListEntries {
			return nil, fail("list %q: more than %d entries in the file's lists", l.name, checkpoint.MaxListEntries)
		}
		l.entries = make([][]byte, 0, count)
		for range count {
			n, err := uv("entry length")
			if err != nil {
				return nil, err
			}
			if n > uint64(len(b)) {
				return nil, fail("list %q: entry of %d bytes, %d left", l.name, n, len(b))
			}
			l.entries = append(l.entries, b[:n:n])
			b = b[n:]
		}
		out[l.name] = l
	}
	return out, nil
}

// restoredLists reads the list entries o assigns to this subtask.
func restoredLists(ctx context.Context, rf checkpoint.RestoreFiles, o *checkpoint.OperatorRestore) (map[string]restoredList, error) {
	out := map[string]restoredList{}
	files := map[string]map[string]listCopy{}
	for name, slices := range o.Lists {
		r := restoredList{}
		if len(slices) == 0 {
			out[name] = r
			continue
		}
		for _, s := range slices {
			f, ok := files[s.File.Path]
			if !ok {
				b, err := readAllFile(ctx, rf, s.File)
				if err != nil {
					return nil, err
				}
				if f, err = readLists(b, s.File.Path); err != nil {
					return nil, err
				}
				files[s.File.Path] = f
			}
			l, ok := f[name]
			if !ok {
				return nil, fmt.Errorf("operator state file %s: no list %q", s.File.Path, name)
			}
			if s.From < 0 || s.To < s.From || s.To > int64(len(l.entries)) {
				return nil, fmt.Errorf("operator state file %s: list %q has %d entries, restore asks for [%d, %d)", s.File.Path, name, len(l.entries), s.From, s.To)
			}
			if r.mode != 0 && r.mode != l.mode {
				return nil, fmt.Errorf("operator state file %s: list %q is %v there and %v in another file", s.File.Path, name, l.mode, r.mode)
			}
			r.mode = l.mode
			r.entries = append(r.entries, l.entries[s.From:s.To]...)
		}
		out[name] = r
	}
	return out, nil
}

func readAllFile(ctx context.Context, rf checkpoint.RestoreFiles, ref checkpoint.FileRef) ([]byte, error) {
	rc, err := rf.Open(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("open operator state file %s: %w", ref.Path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxListsFile+1))
	if err != nil {
		return nil, fmt.Errorf("read operator state file %s: %w", ref.Path, err)
	}
	if len(b) > maxListsFile {
		return nil, fmt.Errorf("operator state file %s: larger than %d bytes", ref.Path, maxListsFile)
	}
	return b, nil
}

// keyedRestores turns the keyed handles of o into what a state.Factory restores from.
func keyedRestores(rf checkpoint.RestoreFiles, o *checkpoint.OperatorRestore, sameJob bool) ([]state.Restore, error) {
	var out []state.Restore
	for _, h := range o.Keyed {
		r, err := state.RestoreOf(h, rf, sameJob)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// restoreOf is what operator name of the chain restores; nil: it starts empty.
func (cp *TaskCheckpointing) restoreOf(name string) *checkpoint.OperatorRestore {
	if cp == nil || cp.Restore == nil {
		return nil
	}
	return cp.Restore.Operators[name]
}

// decline declines checkpoint id for reason and cancels it downstream, once.
func (t *task) decline(id int64, reason string) error {
	t.cp.Decline(id, reason)
	return t.cancelDownstream(id)
}

// cancelDownstream sends CANCEL_BARRIER id downstream unless it was sent already, so later
// tasks stop aligning at once rather than at the checkpoint's timeout.
func (t *task) cancelDownstream(id int64) error {
	if id <= t.cancelSent {
		return nil
	}
	t.cancelSent = id
	if err := t.out.broadcast(event.Event{Kind: event.KindCancelBarrier, Barrier: event.Barrier{ID: id}}); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	return nil
}

// errNoRestoreFiles is a TaskIO restoring without a way to open the files.
var errNoRestoreFiles = errors.New("TaskCheckpointing.Restore is set but RestoreFiles is nil")
