package kafka

import (
	"slices"
	"testing"
)

func TestPatternResources(t *testing.T) {
	for pattern, want := range map[string][]string{
		"logs-.*":                              {"logs-*"},
		"logs-.+":                              {"logs-*"},
		"logs-[ab]":                            {"logs-a", "logs-b"},
		"lines|word-counts":                    {"lines", "word-counts"},
		"lin.*|word-counts":                    {"lin*", "word-counts"},
		"(clicks|views)-v[12]":                 {"clicks-v1", "clicks-v2", "views-v1", "views-v2"},
		"logs-(eu|us)-.*":                      {"logs-eu-*", "logs-us-*"},
		"orders(-v2)?":                         {"orders", "orders-v2"},
		".*":                                   {"*"},
		".*-prod":                              {"*"},
		"[a-z]+":                               {"*"},
		"a.*b":                                 {"a*"},
		`logs-\*`:                              {"*"},
		"(?i)ab":                               {"AB", "Ab", "aB", "ab"},
		"x{2,}":                                {"x*"},
		"[^a]bc":                               {"*"},
		"(a|b|c|d)(a|b|c|d)(a|b|c|d)(a|b|c|d)": {"*"},
	} {
		if got := patternResources(pattern); !slices.Equal(got, want) {
			t.Errorf("patternResources(%q) = %q, want %q", pattern, got, want)
		}
	}
}
