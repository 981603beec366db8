package hashmap

import (
	"context"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

// TestConformance runs the suite every keyed state backend passes.
func TestConformance(t *testing.T) {
	statetest.Run(t, func(t testing.TB, cfg state.Config, restore []state.Restore) (state.Backend, error) {
		b, err := Factory{}.New(context.Background(), cfg, restore)
		if err == nil {
			t.Cleanup(func() { b.Close() })
		}
		return b, err
	})
}
