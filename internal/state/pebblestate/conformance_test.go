package pebblestate

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

// newBackend creates a backend in a new work directory of the test, closed
// when the test ends.
func newBackend(t testing.TB, cfg state.Config, restore []state.Restore) (state.Backend, error) {
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(t.TempDir(), "work")
	}
	b, err := Factory{}.New(context.Background(), cfg, restore)
	if err == nil {
		t.Cleanup(func() { b.Close() })
	}
	return b, err
}

// TestConformance runs the suite every keyed state backend passes, the
// same cases as hashmap's.
func TestConformance(t *testing.T) {
	statetest.Run(t, newBackend)
}
