package authz

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func fixed(d Decision, reason string, err error, calls *[]string, name string) Authorizer {
	return AuthorizerFunc(func(context.Context, Attributes) (Decision, string, error) {
		*calls = append(*calls, name)
		return d, reason, err
	})
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{Deny: "deny", Allow: "allow", NoOpinion: "no-opinion", 7: "Decision(7)"} {
		if got := d.String(); got != want {
			t.Errorf("%d: got %q, want %q", int(d), got, want)
		}
	}
	var zero Decision
	if zero != Deny {
		t.Error("the zero Decision must be Deny")
	}
}

func TestUnion(t *testing.T) {
	boom := errors.New("webhook unreachable")
	type step struct {
		name   string
		d      Decision
		reason string
		err    error
	}
	tests := []struct {
		name       string
		steps      []step
		want       Decision
		wantReason string
		wantBy     string
		wantErr    error
		wantCalls  string
	}{
		{"empty union denies", nil, Deny, "no authorizer allowed view on cluster", "", nil, ""},
		{"first allow wins", []step{{"a", Allow, "ok", nil}, {"b", Deny, "no", nil}}, Allow, "ok", "a", nil, "a"},
		{"first deny wins", []step{{"a", Deny, "no", nil}, {"b", Allow, "ok", nil}}, Deny, "no", "a", nil, "a"},
		{"no opinion passes on", []step{{"a", NoOpinion, "", nil}, {"b", Allow, "ok", nil}}, Allow, "ok", "b", nil, "a,b"},
		{"no opinion then deny", []step{{"a", NoOpinion, "", nil}, {"b", Deny, "no", nil}, {"c", Allow, "", nil}}, Deny, "no", "b", nil, "a,b"},
		{"all no opinion denies", []step{{"a", NoOpinion, "", nil}, {"b", NoOpinion, "", nil}}, Deny, "no authorizer allowed view on cluster", "", nil, "a,b"},
		{"error stops", []step{{"a", NoOpinion, "", nil}, {"b", Allow, "", boom}, {"c", Allow, "ok", nil}}, Deny, "", "b", boom, "a,b"},
		{"error with deny stops", []step{{"a", Deny, "x", boom}, {"c", Allow, "ok", nil}}, Deny, "x", "a", boom, "a"},
		{"unknown decision fails closed", []step{{"a", Decision(42), "", nil}, {"b", Allow, "ok", nil}}, Deny, "", "a", nil, "a"},
		{"unnamed reported by index", []step{{"", NoOpinion, "", nil}, {"", Allow, "ok", nil}}, Allow, "ok", "#1", nil, "#0,#1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			var u Union
			for _, s := range tt.steps {
				if s.name == "" {
					name := "#" + string(rune('0'+len(u)))
					u = append(u, fixed(s.d, s.reason, s.err, &calls, name))
					continue
				}
				u = append(u, Named(s.name, fixed(s.d, s.reason, s.err, &calls, s.name)))
			}
			at := Attributes{User: "u", Verb: "view", Resource: "cluster"}
			d, reason, by, err := u.AuthorizeNamed(context.Background(), at)
			if d != tt.want || reason != tt.wantReason || by != tt.wantBy {
				t.Errorf("got %v %q by %q, want %v %q by %q", d, reason, by, tt.want, tt.wantReason, tt.wantBy)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if strings.HasPrefix(tt.name, "unknown decision") && err == nil {
				t.Error("an unknown decision must be an error")
			}
			if tt.wantErr == nil && !strings.HasPrefix(tt.name, "unknown decision") && err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if got := strings.Join(calls, ","); got != tt.wantCalls {
				t.Errorf("asked %q, want %q", got, tt.wantCalls)
			}
			// Authorize agrees with AuthorizeNamed.
			calls = nil
			d2, reason2, err2 := u.Authorize(context.Background(), at)
			if d2 != d || reason2 != reason || (err2 == nil) != (err == nil) {
				t.Errorf("Authorize: %v %q %v, AuthorizeNamed: %v %q %v", d2, reason2, err2, d, reason, err)
			}
		})
	}
}

func TestUnionNil(t *testing.T) {
	for _, u := range []Union{{nil}, {Named("x", nil)}} {
		d, _, by, err := u.AuthorizeNamed(context.Background(), Attributes{})
		if d != Deny || err == nil {
			t.Errorf("%v: got %v %v, want Deny and an error", by, d, err)
		}
	}
}

func TestUnionNested(t *testing.T) {
	var calls []string
	inner := Union{Named("a", fixed(NoOpinion, "", nil, &calls, "a"))}
	outer := Union{Named("inner", inner), Named("b", fixed(Allow, "ok", nil, &calls, "b"))}
	// A Union never answers NoOpinion: its default deny is final.
	d, _, by, err := outer.AuthorizeNamed(context.Background(), Attributes{Verb: "view", Resource: "x"})
	if d != Deny || by != "inner" || err != nil {
		t.Errorf("got %v by %q %v, want deny by inner", d, by, err)
	}
}

func TestAllowAll(t *testing.T) {
	d, reason, err := AllowAll().Authorize(context.Background(), Attributes{})
	if d != Allow || reason != "security.authorization.mode is allow-all" || err != nil {
		t.Errorf("got %v %q %v", d, reason, err)
	}
}

func TestDefaultChain(t *testing.T) {
	// The chain of doc.go: the owner of a job may cancel it although the
	// ACL gives the owner nothing; others are denied by the ACL.
	acl := newTestACL(t, examplePolicy)
	u := Union{Named("job-owner", JobOwnership()), Named("acl", acl)}
	ctx := context.Background()
	job := &JobACL{Owner: "zoe", ViewUsers: []string{"alice"}}
	d, reason, by, err := u.AuthorizeNamed(ctx, Attributes{User: "zoe", Verb: "cancel", Resource: "job/j", Job: job})
	if d != Allow || by != "job-owner" || reason != "zoe owns job j" || err != nil {
		t.Errorf("owner: %v %q by %q %v", d, reason, by, err)
	}
	d, reason, by, err = u.AuthorizeNamed(ctx, Attributes{User: "alice", Verb: "cancel", Resource: "job/j", Job: job})
	if d != Deny || by != "acl" || !strings.Contains(reason, "alice to cancel job/j") || err != nil {
		t.Errorf("viewer cancelling: %v %q by %q %v", d, reason, by, err)
	}
}
