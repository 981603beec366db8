package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

const testJob = "5d1f2a0c9e7b4411"

var sum64 = strings.Repeat("ab", 32)

// build is a checkpoint of a job with a source "gen" (one split list of
// splits entries per subtask, given per subtask) at parallelism len(splits)
// and a keyed "sum" at parallelism keyedP.
func build(id int64, maxP int, splits []int64, keyedP int) *Metadata {
	m := &Metadata{
		Format: Format, JobID: testJob, JobName: "stateful", CheckpointID: id, Type: TypeCheckpoint,
		Triggered: 1718000000123, Completed: 1718000000391, MaxParallelism: maxP, Sealing: SealingSHA256,
	}
	gen := OperatorState{Name: "gen", Type: "generator", Parallelism: len(splits)}
	for s, n := range splits {
		gen.Subtasks = append(gen.Subtasks, SubtaskState{Operator: &ListsHandle{
			File:  FileRef{Path: CheckpointFile(id, StateFile(0, s, KindOperator)), Size: 100 + n, SHA256: sum64},
			Lists: []ListInfo{{Name: "splits", Mode: ModeSplit, Count: n}, {Name: "watermarks", Mode: ModeUnion, Count: 1}},
		}})
	}
	sum := OperatorState{Name: "sum", Type: "aggregate", Parallelism: keyedP}
	for s := range keyedP {
		r := keygroup.RangeOf(s, keyedP, maxP)
		offs := make([]int64, r.Len())
		for i := range offs {
			offs[i] = int64(5 + 10*i)
		}
		sum.Subtasks = append(sum.Subtasks, SubtaskState{Keyed: &KeyedHandle{
			Format: FormatKGStream, KeyGroups: r, Offsets: offs,
			States: []StateInfo{{Name: "acc", Kind: "value"}},
			Files:  []FileRef{{Path: CheckpointFile(id, StateFile(2, s, KindKeyed)), Size: int64(10 * len(offs)), SHA256: sum64}},
		}})
	}
	m.Operators = []OperatorState{gen, sum}
	return m
}

func TestMetadataRoundTrip(t *testing.T) {
	m := build(17, 128, []int64{32, 32}, 2)
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, back) {
		t.Fatalf("round trip differs:\n%s", b)
	}
	if !bytes.Contains(b, []byte(`"key-groups": [`)) {
		t.Fatalf("key groups not written as [first, last]:\n%s", b)
	}
}

// TestMetadataDesignExample decodes the example of docs/architecture.md
// (§6.3) with its elisions filled in.
func TestMetadataDesignExample(t *testing.T) {
	doc := `{
  "format": "sluice-checkpoint/1",
  "job-id": "5d1f2a", "job-name": "stateful",
  "checkpoint-id": 17, "type": "CHECKPOINT",
  "trigger-timestamp": 1718000000123, "completion-timestamp": 1718000000391,
  "max-parallelism": 4,
  "sealing": "aes-256-gcm", "key-id": "a41c09e2d7f3b810",
  "finished": false,
  "operators": [
    {"name": "gen", "type": "generator", "parallelism": 1, "subtasks": [
      {"operator": {"file": {"path": "chk-17/0-0-operator", "size": 1290},
                    "lists": [{"name": "splits", "mode": "split", "count": 64}]}}]},
    {"name": "sum", "type": "aggregate", "parallelism": 2, "subtasks": [
      {"keyed": {"format": "kg-stream/1", "key-groups": [0, 1], "offsets": [5, 912],
                 "states": [{"name": "acc", "kind": "value"}],
                 "files": [{"path": "chk-17/2-0-keyed", "size": 48113}]}},
      {"keyed": {"format": "pebble/1", "key-groups": [2, 3], "states": [{"name": "acc", "kind": "value"}], "files": [
         {"path": "shared/9f3c21aa-000123.sst", "size": 2097152, "sealed-for": 15},
         {"path": "chk-17/2-1-pebble/MANIFEST-000005", "size": 300}]}}]}
  ]
}`
	m, err := Unmarshal([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if f := m.Operators[1].Subtasks[1].Keyed.Files[0]; f.BindingID(m.CheckpointID) != 15 {
		t.Errorf("shared file bound to %d", f.BindingID(m.CheckpointID))
	}
	if f := m.Operators[1].Subtasks[0].Keyed.Files[0]; f.BindingID(m.CheckpointID) != 17 {
		t.Errorf("own file bound to %d", f.BindingID(m.CheckpointID))
	}
}

// TestMetadataRefused: each mutation of a valid document is refused with
// an error that says what is wrong.
func TestMetadataRefused(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *Metadata)
		want   string
	}{
		{"format", func(m *Metadata) { m.Format = "sluice-checkpoint/2" }, "format"},
		{"id 0", func(m *Metadata) { m.CheckpointID = 0 }, "checkpoint-id 0"},
		{"negative id", func(m *Metadata) { m.CheckpointID = -1 }, "checkpoint-id -1"},
		{"job id path", func(m *Metadata) { m.JobID = "../other" }, "job-id"},
		{"empty job id", func(m *Metadata) { m.JobID = "" }, "job-id"},
		{"type", func(m *Metadata) { m.Type = "checkpoint" }, "type"},
		{"timestamps", func(m *Metadata) { m.Completed = m.Triggered - 1 }, "timestamps"},
		{"max parallelism 0", func(m *Metadata) { m.MaxParallelism = 0 }, "max-parallelism"},
		{"max parallelism big", func(m *Metadata) { m.MaxParallelism = 40000 }, "max-parallelism"},
		{"sealing", func(m *Metadata) { m.Sealing = "none" }, "sealing"},
		{"key id without key", func(m *Metadata) { m.KeyID = "a41c09e2d7f3b810" }, "key-id"},
		{"no key id", func(m *Metadata) { m.Sealing = SealingAESGCM; m.KeyID = "" }, "key-id"},
		{"operator name twice", func(m *Metadata) { m.Operators[1].Name = "gen" }, "appears twice"},
		{"empty operator name", func(m *Metadata) { m.Operators[0].Name = "" }, "name"},
		{"parallelism above max", func(m *Metadata) { m.Operators[1].Parallelism = 200 }, "parallelism 200"},
		{"subtasks missing", func(m *Metadata) { m.Operators[1].Subtasks = m.Operators[1].Subtasks[:1] }, "1 subtasks for parallelism 2"},
		{"range not the subtask's", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.KeyGroups = keygroup.Range{First: 0, Last: 64} }, "key-groups [0, 64]"},
		{"offsets count", func(m *Metadata) { k := m.Operators[1].Subtasks[0].Keyed; k.Offsets = k.Offsets[1:] }, "offsets"},
		{"offset past file", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.Offsets[3] = 1 << 40 }, "offset"},
		{"offsets out of order", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.Offsets[3] = 0 }, "out of order"},
		{"keyed format", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.Format = "rocksdb/1" }, "keyed format"},
		{"two kg files", func(m *Metadata) {
			k := m.Operators[1].Subtasks[0].Keyed
			k.Files = append(k.Files, FileRef{Path: "chk-17/x", SHA256: sum64})
		}, "want 1"},
		{"state kind", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.States[0].Kind = "blob" }, "kind"},
		{"state twice", func(m *Metadata) {
			k := m.Operators[1].Subtasks[0].Keyed
			k.States = append(k.States, k.States[0])
		}, "repeated"},
		{"absolute path", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.File.Path = "/etc/passwd" }, "absolute"},
		{"dot-dot path", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.File.Path = "chk-17/../../x" }, `".."`},
		{"other checkpoint's file", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.File.Path = "chk-16/0-0-operator" }, "want chk-17/<file>"},
		{"metadata as state", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.File.Path = "chk-17/_metadata" }, "JobManager only"},
		{"file twice", func(m *Metadata) {
			m.Operators[0].Subtasks[1].Operator.File.Path = m.Operators[0].Subtasks[0].Operator.File.Path
		}, "referenced twice"},
		{"shared kg-stream file", func(m *Metadata) {
			f := &m.Operators[1].Subtasks[0].Keyed.Files[0]
			f.Path, f.SealedFor = "shared/x.sst", 3
		}, "shared files"},
		{"sealed-for on own file", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.Files[0].SealedFor = 17 }, "sealed-for"},
		{"no sha256", func(m *Metadata) { m.Operators[1].Subtasks[0].Keyed.Files[0].SHA256 = "" }, "sha256"},
		{"sha256 when sealed", func(m *Metadata) { m.Sealing, m.KeyID = SealingAESGCM, "a41c09e2d7f3b810" }, "sha256 given"},
		{"negative size", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.File.Size = -1 }, "size -1"},
		{"list mode", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.Lists[0].Mode = "broadcast" }, "mode"},
		{"list count", func(m *Metadata) { m.Operators[0].Subtasks[0].Operator.Lists[0].Count = -1 }, "count -1"},
		{"list counts over the bound together", func(m *Metadata) {
			l := m.Operators[0].Subtasks[0].Operator.Lists
			l[0].Count, l[1].Count = MaxListEntries, 1
		}, "at most 4194304 entries"},
		{"list mode differs", func(m *Metadata) { m.Operators[0].Subtasks[1].Operator.Lists[0].Mode = ModeUnion }, "split in one subtask and union"},
		{"list twice", func(m *Metadata) {
			l := m.Operators[0].Subtasks[0].Operator
			l.Lists = append(l.Lists, l.Lists[0])
		}, "repeated"},
		{"pebble in savepoint", func(m *Metadata) {
			m.Type = TypeSavepoint
			for i := range m.Operators {
				for s := range m.Operators[i].Subtasks {
					st := &m.Operators[i].Subtasks[s]
					if st.Operator != nil {
						st.Operator.File.Path = strings.TrimPrefix(st.Operator.File.Path, "chk-17/")
					}
					if st.Keyed != nil {
						st.Keyed.Format, st.Keyed.Offsets = FormatPebble, nil
						st.Keyed.Files[0].Path = strings.TrimPrefix(st.Keyed.Files[0].Path, "chk-17/")
					}
				}
			}
		}, "savepoints are written in kg-stream/1"},
		{"savepoint file in a directory", func(m *Metadata) { m.Type = TypeSavepoint }, "plain names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := build(17, 128, []int64{32, 32}, 2)
			tt.mutate(m)
			if _, err := Marshal(m); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal: %v, want %q", err, tt.want)
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Unmarshal(b); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unmarshal: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMetadataDecodeRefused(t *testing.T) {
	good, err := Marshal(build(17, 128, []int64{1}, 1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", strings.Replace(string(good), `"format"`, `"owner": "x", "format"`, 1), "unknown field"},
		{"unknown nested field", strings.Replace(string(good), `"size"`, `"mode": 420, "size"`, 1), "unknown field"},
		{"trailing data", string(good) + "{}", "data after the document"},
		{"two documents", string(good) + string(good), "data after the document"},
		{"not json", "SLSEAL\x00\x01", "_metadata"},
		{"range as object", strings.Replace(string(good), "\"key-groups\": [\n", "\"key-groups\": {\"First\": 0}, \"x\": [\n", 1), "key-group range"},
		{"too large", string(good) + strings.Repeat(" ", MaxMetadataSize), "more than"},
	}
	for _, tt := range tests {
		if _, err := Unmarshal([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(build(3, 8, []int64{2, 1}, 3))
	f.Add(good)
	f.Add([]byte(`{"format":"sluice-checkpoint/1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			return
		}
		// Whatever decodes is valid and can be assigned at any parallelism.
		if _, err := Marshal(m); err != nil {
			t.Fatalf("valid document does not re-encode: %v", err)
		}
		// Every file it names stays inside the snapshot's root, as written.
		for _, f := range m.Files() {
			if c := path.Clean(f.Path); c != f.Path || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") || c == MetadataName {
				t.Fatalf("accepted file path %q", f.Path)
			}
		}
		for _, o := range m.Operators {
			for p := 1; p <= min(m.MaxParallelism, 4); p++ {
				for s := range p {
					if _, err := Assign(m, o.Name, s, p); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	})
}

func ExampleUnmarshal() {
	m := build(17, 128, []int64{2}, 2)
	b, _ := Marshal(m)
	back, err := Unmarshal(b)
	fmt.Println(back.Operators[1].Subtasks[1].Keyed.KeyGroups, err)
	// Output: [64, 127] <nil>
}
