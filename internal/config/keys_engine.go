package config

// Keys of the streaming engine (docs/architecture.md, "Engine"). In their own
// file and init so the engine's steps add keys here without touching the
// other key blocks.
func init() {
	for _, k := range []Key{
		{Name: "pipeline.max-parallelism", Job: true, Type: Int, Default: "128", Min: new(int64(1)), Max: new(int64(32768)),
			Doc: "Number of key groups: the upper bound of the parallelism of keyed operators and sources. Fixed for the life of a job's state: a savepoint restores only into a job with the same value."},
		{Name: "pipeline.auto-watermark-interval", Job: true, Type: Duration, Default: "200 ms", Min: new(int64(1)),
			Doc: "How often sources and watermark operators with a `watermark:` option emit their watermark and check their idle-timeout."},
	} {
		Register(k)
	}
}
