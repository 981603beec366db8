package dataflow

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSpecNodeCap(t *testing.T) {
	ok := "name: j\noperators:\n  - {name: g, type: generator, count: 1}\n  - {name: p, type: print, input: g}\n"
	if _, err := ParseSpec([]byte(ok), nil); err != nil {
		t.Fatal(err)
	}
	// Small in bytes, huge in nodes: a flow list of one-letter items, in a known and in an
	// unknown key (the count must come before any other check).
	var pairs strings.Builder // fewer separators than the cap, more nodes: caught in the tree
	for i := 0; i < MaxSpecNodes*3/4; i++ {
		fmt.Fprintf(&pairs, "k%d: v, ", i)
	}
	for _, where := range []string{"parameters", "junk"} {
		for _, value := range []string{"[" + strings.Repeat("a,", MaxSpecNodes) + "a]", "{" + pairs.String() + "}"} {
			spec := "name: j\n" + where + ": " + value + "\n" + ok[len("name: j\n"):]
			_, err := ParseSpec([]byte(spec), nil)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d YAML nodes", MaxSpecNodes)) {
				t.Errorf("%s: %.20s...: got %v, want the node cap error", where, value, err)
			}
		}
	}
}

func TestSpecAliasesRefused(t *testing.T) {
	// The billion laughs: nine levels of ten aliases each.
	var b strings.Builder
	b.WriteString("name: j\nparameters:\n  l0: &l0 lol\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", i-1), 10), ","))
	}
	b.WriteString("operators:\n  - {name: g, type: generator, count: 1}\n  - {name: p, type: print, input: g}\n")
	start := time.Now()
	_, err := ParseSpec([]byte(b.String()), nil)
	if err == nil || !strings.Contains(err.Error(), "aliases and anchors are not allowed") {
		t.Fatalf("got %v, want the alias error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing the alias bomb took %s", d)
	}
	// A single alias, used where a value is expected, is refused as well.
	one := "name: j\noperators:\n  - &g {name: g, type: generator, count: 1}\n  - {name: p, type: print, input: g}\n"
	if _, err := ParseSpec([]byte(one), nil); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("anchor: got %v, want the anchor error naming line 3", err)
	}
}

// Parameters cannot multiply a spec's size: many references to one large value are refused.
func TestParamExpansionBounded(t *testing.T) {
	refs := strings.TrimSuffix(strings.Repeat("${x},", 100), ",")
	spec := "name: j\nparameters:\n  x: small\noperators:\n  - {name: g, type: generator, count: 1}\n" +
		"  - {name: f, type: filter, input: g, expr: 'size([" + refs + "]) > 0'}\n  - {name: p, type: blackhole, input: f}\n"
	if _, err := ParseSpec([]byte(spec), nil); err != nil {
		t.Fatalf("small value: %v", err)
	}
	big := map[string]string{"x": strings.Repeat("v", 1<<20)} // 100 × 1 MiB: 100 MB if expanded
	start := time.Now()
	_, err := ParseSpec([]byte(spec), big)
	if err == nil || !strings.Contains(err.Error(), "parameters expand the job spec") {
		t.Fatalf("got %v, want the expansion error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing took %s", d)
	}
}
