package nexmarkbench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// TestBenchSpecRewrite checks what a measurement runs: the spec's nexmark
// source generates exactly the events asked for (whatever the spec's
// parameters and a file path say), and every sink is a blackhole.
func TestBenchSpecRewrite(t *testing.T) {
	specs, _ := filepath.Glob("testdata/*.yaml")
	// The examples' Nexmark specs (bids.yaml, the queries qN.yaml): each
	// must be measurable.
	examples, _ := filepath.Glob("../../examples/nexmark/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no spec in examples/nexmark")
	}
	for _, path := range append(specs, examples...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := benchSpec(raw, 1234)
			if err != nil {
				t.Fatalf("benchSpec: %v", err)
			}
			// A file the user passes as input must not be read instead.
			s, err := dataflow.ParseSpec(out, nil)
			if err != nil {
				t.Fatalf("the rewritten spec does not parse: %v\n%s", err, out)
			}
			read := map[string]bool{}
			for _, op := range s.Operators {
				for _, in := range op.InputNames() {
					read[in] = true
				}
			}
			sources, sinks := 0, 0
			for _, op := range s.Operators {
				switch {
				case op.Type == "nexmark":
					sources++
					if !strings.Contains(string(out), "events: \"1234\"") && !strings.Contains(string(out), "events: 1234") {
						t.Errorf("source %s: events not set to 1234:\n%s", op.Name, out)
					}
				case len(op.InputNames()) > 0 && !read[op.Name]:
					sinks++
					if op.Type != "blackhole" {
						t.Errorf("sink %s is a %s, want a blackhole", op.Name, op.Type)
					}
				}
			}
			if sources == 0 || sinks == 0 {
				t.Errorf("%d nexmark sources and %d sinks, want at least one of each", sources, sinks)
			}
		})
	}
}

func TestBenchSpecRefusesOtherJobs(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"name: x\noperators:\n  - {name: g, type: generator}\n  - {name: s, type: print, input: g}\n", "no operator of type nexmark"},
		{"name: x\noperators:\n  - {name: e, type: nexmark}\n", "no sink"},
		{"name: x\n", "no operators"},
		{"[1, 2]", "want a job spec"},
	} {
		_, err := benchSpec([]byte(tc.spec), 10)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("benchSpec(%q) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
}
