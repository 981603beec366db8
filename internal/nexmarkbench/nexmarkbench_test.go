package nexmarkbench

import (
	"context"
	"testing"
	"time"
)

// TestRunMeasures runs the test copies of a passthrough query and of a
// windowed count on a cluster with tiny settings and checks every figure
// was measured and is consistent with the others. It asserts no speed.
func TestRunMeasures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for _, q := range []string{"q0", "window"} {
		res, err := c.Run(ctx, Options{Query: q, Dir: "testdata", Events: 20_000, Parallelism: 2, CheckpointInterval: 100 * time.Millisecond, Timeout: time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if res.Query != q || res.Events != 20_000 || res.Parallelism != 2 || res.CheckpointIntervalMS != 100 {
			t.Errorf("%s: result does not echo the options: %+v", q, res)
		}
		if res.Seconds <= 0 || res.CPUSeconds <= 0 || res.EventsPerSec <= 0 || res.EventsPerCoreSec <= 0 {
			t.Fatalf("%s: a figure was not measured: %+v", q, res)
		}
		if got := float64(res.Events) / res.CPUSeconds; got != res.EventsPerCoreSec {
			t.Errorf("%s: events_per_core_sec %v, want events / cpu_seconds = %v", q, res.EventsPerCoreSec, got)
		}
		if q == "q0" && (res.FlinkPerCore != 155_000 || res.Ratio != res.EventsPerCoreSec/155_000) {
			t.Errorf("q0: flink_per_core %v ratio %v, want 155000 and events_per_core_sec over it", res.FlinkPerCore, res.Ratio)
		}
		if q == "window" && (res.FlinkPerCore != 0 || res.Ratio != 0) {
			t.Errorf("window: no published figure, got flink_per_core %v ratio %v", res.FlinkPerCore, res.Ratio)
		}
	}
	if _, err := c.Run(ctx, Options{Query: "q99", Dir: "testdata", Events: 10}); err == nil {
		t.Error("a query without a spec ran")
	}
}
