package hashmap

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
)

// TestRefusesNativeFiles: hashmap reads key-group streams only; a pebble
// checkpoint's files are refused with what to do.
func TestRefusesNativeFiles(t *testing.T) {
	r := state.Restore{Name: "chk-4/2-0-pebble", Native: &checkpoint.KeyedHandle{Format: checkpoint.FormatPebble}}
	_, err := Factory{}.New(context.Background(), state.Config{Operator: "sum", KeyGroups: state.KeyGroupRange{First: 0, Last: 3}}, []state.Restore{r})
	for _, want := range []string{"restore keyed state of sum subtask 0", "chk-4/2-0-pebble is in format pebble/1", "state.backend.type: pebble", "savepoint"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
}
