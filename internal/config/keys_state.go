package config

// Keyed state backends (docs/architecture.md, "Engine", §5 and §6.1).
// Both keys are job-level: a job picks its backend with sluice run -D,
// as with flink run -D.
func init() {
	for _, k := range []Key{
		// rocksdb is accepted for Flink users' configurations: sluice has
		// no RocksDB and runs pebble, an LSM store of the same family, for
		// it (the TaskManager says so once in its log).
		{Name: "state.backend.type", Job: true, Type: String, Default: "hashmap",
			Enum: []string{"hashmap", "pebble", "rocksdb"},
			Doc:  "Keyed state backend of a job's operators: hashmap (in memory, the default), pebble (on disk), or rocksdb (an alias of pebble; RocksDB options are ignored)."},
		{Name: "state.backend.incremental", Job: true, Type: Bool, Default: "false",
			Doc: "Incremental checkpoints: upload only the files not in the previous checkpoint (pebble only; hashmap ignores it and says so)."},
	} {
		Register(k)
	}
}
