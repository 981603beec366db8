package config

import (
	"strings"
	"testing"
)

func TestMaxParallelismKey(t *testing.T) {
	k, ok := Lookup("pipeline.max-parallelism")
	if !ok || k.Type != Int || !k.Job {
		t.Fatalf("pipeline.max-parallelism: %+v, registered %v; want a job-level Int key", k, ok)
	}
	c := New()
	if got := c.Int("pipeline.max-parallelism"); got != 128 {
		t.Fatalf("default %d, want 128", got)
	}
	for _, v := range []string{"1", "32768", "256"} {
		if err := c.Set("pipeline.max-parallelism", v); err != nil {
			t.Errorf("Set %s: %v", v, err)
		}
	}
	for _, v := range []string{"0", "32769", "-4", "many"} {
		err := c.Set("pipeline.max-parallelism", v)
		if err == nil || !strings.Contains(err.Error(), "pipeline.max-parallelism") {
			t.Errorf("Set %s: %v, want an error naming the key", v, err)
		}
	}
	job, err := New().WithJobSettings(map[string]string{"pipeline.max-parallelism": "512"})
	if err != nil {
		t.Fatal(err)
	}
	if got := job.Int("pipeline.max-parallelism"); got != 512 {
		t.Fatalf("job setting: %d", got)
	}
}
