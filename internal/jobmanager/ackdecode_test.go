package jobmanager

import (
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
