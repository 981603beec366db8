package authz

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// largePolicy has 1,000 rules in 100 roles, a mix of exact names,
// prefixes, one-segment wildcards and ${user} patterns, given by 100
// bindings to 3 users and 1 group each; every tenth binding is scoped to
// job owners.
func largePolicy() string {
	var b strings.Builder
	verbs := []string{"view", "list", "submit", "cancel", "admin", "read", "write"}
	b.WriteString("super-users: [root]\nroles:\n")
	for r := range 100 {
		fmt.Fprintf(&b, "  role%d:\n", r)
		for i := range 10 {
			n := r*10 + i
			var res string
			switch i % 5 {
			case 0:
				res = fmt.Sprintf("kafka:topic/t%d", n)
			case 1:
				res = "job/*"
			case 2:
				res = fmt.Sprintf("file:/srv/r%d/*", n)
			case 3:
				res = fmt.Sprintf("file:/data/*/r%d/*", n)
			case 4:
				res = fmt.Sprintf("file:/home/${user}/r%d/*", n)
			}
			fmt.Fprintf(&b, "    - verbs: [%s]\n      resources: [%q]\n", verbs[n%len(verbs)], res)
		}
	}
	b.WriteString("bindings:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  - role: role%d\n    users: [u%d, u%d, u%d]\n    groups: [g%d]\n", i, i, (i+1)%100, (i+2)%100, i%20)
		if i%10 == 0 {
			fmt.Fprintf(&b, "    job-owners: [u%d, \"${user}\"]\n", (i+5)%100)
		}
	}
	return b.String()
}

// decisionMix is a fixed set of requests, some allowed, most denied.
func decisionMix(tb testing.TB, a *ACL) []Attributes {
	rnd := rand.New(rand.NewPCG(1, 2))
	verbs := []string{"view", "list", "submit", "cancel", "admin", "read", "write"}
	ats := make([]Attributes, 0, 1024)
	allowed := 0
	for len(ats) < cap(ats) {
		u := rnd.IntN(110) // some users are bound to nothing
		n := rnd.IntN(1000)
		var res string
		switch rnd.IntN(6) {
		case 0:
			res = fmt.Sprintf("kafka:topic/t%d", n)
		case 1:
			res = fmt.Sprintf("job/j%d", n)
		case 2:
			res = fmt.Sprintf("file:/srv/r%d/part-%d", n, rnd.IntN(100))
		case 3:
			res = fmt.Sprintf("file:/data/d%d/r%d/x/y", rnd.IntN(10), n)
		case 4:
			res = fmt.Sprintf("file:/home/u%d/r%d/out", u, n)
		case 5:
			res = "cluster"
		}
		at := Attributes{
			User:     fmt.Sprintf("u%d", u),
			Groups:   []string{fmt.Sprintf("g%d", rnd.IntN(25)), "system:authenticated"},
			Verb:     verbs[rnd.IntN(len(verbs))],
			Resource: res,
			Job:      &JobACL{Owner: fmt.Sprintf("u%d", rnd.IntN(100))},
		}
		if d, _, _ := a.Authorize(context.Background(), at); d == Allow {
			allowed++
		}
		ats = append(ats, at)
	}
	tb.Logf("decision mix: %d of %d allowed", allowed, len(ats))
	return ats
}

func BenchmarkACLDecision(b *testing.B) {
	a := newTestACL(b, largePolicy())
	ats := decisionMix(b, a)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		a.Authorize(ctx, ats[i%len(ats)])
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	p50, p99 := percentiles(lat)
	b.ReportMetric(float64(p50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(p99.Nanoseconds()), "p99-ns")
}

// TestACLLatency reports the p50 and p99 latency of 100,000 decisions
// against the 1,000-rule policy. It does not assert them (timing depends
// on the machine); the target is a p99 under 20µs.
func TestACLLatency(t *testing.T) {
	a := newTestACL(t, largePolicy())
	rules := 0
	for _, rs := range a.Policy().Roles {
		rules += len(rs)
	}
	if rules != 1000 || len(a.Policy().Bindings) != 100 {
		t.Fatalf("policy has %d rules and %d bindings", rules, len(a.Policy().Bindings))
	}
	ats := decisionMix(t, a)
	ctx := context.Background()
	const n = 100_000
	lat := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		a.Authorize(ctx, ats[i%len(ats)])
		lat[i] = time.Since(start)
	}
	p50, p99 := percentiles(lat)
	t.Logf("%d decisions, 1000 rules, 100 bindings: p50 %v, p99 %v (target p99 < 20µs)", n, p50, p99)
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)*50/100], s[len(s)*99/100]
}
