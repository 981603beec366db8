package jobmanager

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestEveryEndpointIsAuthorized walks the REST router: every endpoint maps
// to exactly one known verb and resource, and docs/security.md lists the
// same table, so an endpoint cannot be added without a decision about who
// may use it.
func TestEveryEndpointIsAuthorized(t *testing.T) {
	jm, err := New(Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rs := jm.newREST(nil)
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	verbs := []string{"view", "list", "submit", "cancel", "savepoint", "admin"}
	resources := []string{"cluster", "jobs", "job/{id}", "taskmanagers", "config", "logs", "metrics", "admin", "self"}
	seen := map[string]bool{}
	for _, rt := range rs.routes() {
		if seen[rt.pattern] {
			t.Errorf("%s registered twice", rt.pattern)
		}
		seen[rt.pattern] = true
		if !slices.Contains(verbs, rt.verb) || !slices.Contains(resources, rt.resource) || rt.handler == nil {
			t.Errorf("%s: verb %q resource %q: not a known verb and resource", rt.pattern, rt.verb, rt.resource)
		}
		row := fmt.Sprintf("| `%s` | %s | %s |", rt.pattern, rt.verb, rt.resource)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/security.md lacks the row %s", row)
		}
		// The pattern is reachable through the router (not the 404 fallback).
		method, path, _ := strings.Cut(rt.pattern, " ")
		req := newRequest(method, strings.ReplaceAll(path, "{id}", "0123"))
		if _, pattern := rs.mux.Handler(req); pattern != rt.pattern {
			t.Errorf("%s: the router sends %s %s to %q", rt.pattern, method, path, pattern)
		}
	}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `") && strings.Contains(line, " /") {
			pattern := strings.Trim(strings.Split(line, "|")[1], " `")
			if !seen[pattern] {
				t.Errorf("docs/security.md lists %s, which the router does not serve", pattern)
			}
		}
	}
}
