package jobmanager

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// TestAckOperatorsStrict: an acknowledgement's per-operator state is
// decoded as strictly as _metadata: unknown fields, a second value or
// trailing bytes after the object are refused (InvalidArgument, naming the
// operator), not silently dropped.
func TestAckOperatorsStrict(t *testing.T) {
	good := `{"operator": {"file": {"path": "chk-3/0-0-operator", "size": 10, "sha256": "` + strings.Repeat("ab", 32) + `"}, "lists": []}}`
	req := func(b string) *controlpb.AcknowledgeCheckpointRequest {
		return &controlpb.AcknowledgeCheckpointRequest{CheckpointId: 3, Operators: map[string][]byte{"gen": []byte(b)}}
	}
	ops, err := ackOperators(req(good))
	if err != nil || ops["gen"].Operator == nil || ops["gen"].Operator.File.Path != "chk-3/0-0-operator" {
		t.Fatalf("good state: %+v %v", ops, err)
	}
	for name, b := range map[string]string{
		"unknown field":        `{"operator": null, "evil": true}`,
		"nested unknown field": `{"keyed": {"format": "kg-stream/1", "path": "/etc/passwd"}}`,
		"second object":        good + `{"operator": {"file": {"path": "../../x"}}}`,
		"trailing garbage":     good + ` ]`,
		"not JSON":             `chk-3/0-0-operator`,
		"empty":                ``,
	} {
		_, err := ackOperators(req(b))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `operator "gen"`) {
			t.Errorf("%s: %v, want InvalidArgument naming the operator", name, err)
		}
	}
}

// FuzzAckOperators: the operator states of an acknowledgement come from
// the network; decoding never panics, and what is accepted re-encodes.
func FuzzAckOperators(f *testing.F) {
	f.Add([]byte(`{"operator": {"file": {"path": "chk-3/0-0-operator", "size": 10}, "lists": [{"name": "l", "mode": "split", "count": 1}]}}`))
	f.Add([]byte(`{"keyed": {"format": "kg-stream/1", "key-groups": {"first": 0, "last": 3}, "offsets": [0, 1, 2, 3], "states": [], "files": []}}`))
	f.Add([]byte(`{"finished": true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := ackOperators(&controlpb.AcknowledgeCheckpointRequest{CheckpointId: 1, Operators: map[string][]byte{"op": b}})
		if err != nil {
			return
		}
		if _, err := json.Marshal(ops["op"]); err != nil {
			t.Fatalf("accepted state does not re-encode: %v", err)
		}
	})
}
