package checkpoint

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// TaskRestore is what one subtask of a vertex (a chain of operators)
// restores.
type TaskRestore struct {
	CheckpointID int64
	Operators    map[string]*OperatorRestore // by operator name; absent: starts empty
}

// OperatorRestore is what one subtask of an operator restores.
type OperatorRestore struct {
	CheckpointID int64
	// Finished: every subtask of the operator had ended its input.
	Finished bool
	// KeyGroups is the subtask's range at its new parallelism.
	KeyGroups keygroup.Range
	// Keyed are the old subtasks' handles whose range intersects
	// KeyGroups, in old subtask order; the reader reads only the
	// intersection.
	Keyed []*KeyedHandle
	// Lists are, per list state, the entries this subtask gets.
	Lists map[string][]ListSlice
}

// ListSlice is a run of entries of one list in one old subtask's operator
// state file: entries [From, To) of list Name in File.
type ListSlice struct {
	File     FileRef
	Subtask  int // the old subtask that wrote File
	From, To int64
}

// Assign says what subtask of an operator running at parallelism restores
// from m, whatever the parallelism m was taken at. Keyed state moves by
// whole key groups: the subtask gets every old handle whose range
// intersects its new one. Split lists are concatenated in old subtask
// order and subtask i gets entries [i*n/p, (i+1)*n/p); union lists give
// every subtask every entry. An operator m has no state for returns nil:
// it starts empty. m must be valid (as Unmarshal returns it).
func Assign(m *Metadata, operator string, subtask, parallelism int) (*OperatorRestore, error) {
	if err := keygroup.CheckParallelism(parallelism, m.MaxParallelism); err != nil {
		return nil, fmt.Errorf("restore operator %q from checkpoint %d: %w", operator, m.CheckpointID, err)
	}
	if subtask < 0 || subtask >= parallelism {
		return nil, fmt.Errorf("restore operator %q: subtask %d outside 0..%d", operator, subtask, parallelism-1)
	}
	o := m.Operator(operator)
	if o == nil {
		return nil, nil
	}
	r := &OperatorRestore{
		CheckpointID: m.CheckpointID,
		Finished:     true,
		KeyGroups:    keygroup.RangeOf(subtask, parallelism, m.MaxParallelism),
	}
	type list struct {
		mode   string
		counts []int64 // per old subtask
		total  int64
	}
	lists := map[string]*list{}
	var order []string
	for s := range o.Subtasks {
		st := &o.Subtasks[s]
		r.Finished = r.Finished && st.Finished
		if k := st.Keyed; k != nil {
			if _, ok := k.KeyGroups.Intersect(r.KeyGroups); ok {
				r.Keyed = append(r.Keyed, k)
			}
		}
		if st.Operator == nil {
			continue
		}
		for _, li := range st.Operator.Lists {
			l := lists[li.Name]
			if l == nil {
				l = &list{mode: li.Mode, counts: make([]int64, len(o.Subtasks))}
				lists[li.Name] = l
				order = append(order, li.Name)
			}
			if l.mode != li.Mode {
				return nil, fmt.Errorf("restore operator %q from checkpoint %d: list state %q is %s in one subtask and %s in another", operator, m.CheckpointID, li.Name, l.mode, li.Mode)
			}
			l.counts[s] = li.Count
			l.total += li.Count
		}
	}
	if len(lists) > 0 {
		r.Lists = map[string][]ListSlice{}
	}
	for _, name := range order {
		l := lists[name]
		// The global range this subtask gets, in the concatenation.
		lo, hi := int64(0), l.total
		if l.mode == ModeSplit {
			lo = int64(subtask) * l.total / int64(parallelism)
			hi = int64(subtask+1) * l.total / int64(parallelism)
		}
		out := []ListSlice{}
		var base int64
		for s, n := range l.counts {
			from, to := max(lo, base), min(hi, base+n)
			if from < to {
				out = append(out, ListSlice{File: o.Subtasks[s].Operator.File, Subtask: s, From: from - base, To: to - base})
			}
			base += n
		}
		r.Lists[name] = out
	}
	return r, nil
}
