// Package statebench holds the benchmarks that compare the keyed state
// backends on the same work (docs/architecture.md §10): it has no code of
// its own, only bench_test.go, which imports every backend.
package statebench
