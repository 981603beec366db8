package authz

import (
	"slices"
	"strings"
	"testing"
)

func TestParseModes(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{nil, []string{"allow-all"}, ""},
		{[]string{" "}, []string{"allow-all"}, ""},
		{[]string{"allow-all"}, []string{"allow-all"}, ""},
		{[]string{"ACL", " webhook "}, []string{"acl", "webhook"}, ""},
		{[]string{"opa", "acl"}, []string{"opa", "acl"}, ""},
		{[]string{"rbac"}, nil, `unknown mode "rbac"`},
		{[]string{"acl", "acl"}, nil, "listed twice"},
		{[]string{"acl", "allow-all"}, nil, "cannot be combined"},
	}
	for _, tt := range tests {
		got, err := ParseModes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ModeKey) {
				t.Errorf("%q: error %v, want %q naming %s", tt.in, err, tt.wantErr, ModeKey)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %q %v, want %q", tt.in, got, err, tt.want)
		}
	}
}
