package jobmanager

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/config"
)

// checkStateBackend refuses a job whose state.backend.type names a backend this build does not
// have. Only hashmap is built; pebble (and rocksdb, its alias) come with a later migration step.
// Refusing at submit, rather than running the job on hashmap, keeps a job that asked for state
// on disk from silently holding it all in memory.
func checkStateBackend(cfg *config.Config) error {
	switch t := cfg.String("state.backend.type"); t {
	case "", "hashmap":
		return nil
	case "rocksdb":
		return fmt.Errorf("state.backend.type %q: sluice runs rocksdb as pebble, and the pebble state backend is not built yet: use state.backend.type=hashmap (sluice run -D state.backend.type=hashmap, or remove the setting)", t)
	default:
		return fmt.Errorf("state.backend.type %q: the %s state backend is not built yet: use state.backend.type=hashmap (sluice run -D state.backend.type=hashmap, or remove the setting)", t, t)
	}
}
