package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func fake(method string, u User, ok bool, err error) Authenticator {
	return AuthenticatorFunc{Name: method, WWWAuthenticate: method + "-challenge", Func: func(*http.Request) (User, bool, error) {
		return u, ok, err
	}}
}

func TestUnion(t *testing.T) {
	alice := User{Name: "alice", Method: MethodX509}
	bob := User{Name: "bob", Method: MethodToken}
	errBad := errors.New("invalid bearer token")
	errOther := errors.New("other")
	tests := []struct {
		name    string
		chain   Union
		want    string // user name
		wantErr error
	}{
		{"empty chain", Union{}, "", nil},
		{"first success wins", Union{fake("x509", alice, true, nil), fake("token", bob, true, nil)}, "alice", nil},
		{"no credential then success", Union{fake("x509", User{}, false, nil), fake("token", bob, true, nil)}, "bob", nil},
		{"error then real success wins (Kubernetes)", Union{fake("token", User{}, false, errBad), fake("x509", alice, true, nil)}, "alice", nil},
		{"error is not excused by anonymous", Union{fake("token", User{}, false, errBad), NewAnonymous()}, "", errBad},
		{"no credential falls to anonymous", Union{fake("token", User{}, false, nil), NewAnonymous()}, AnonymousUser, nil},
		{"first error returned", Union{fake("token", User{}, false, errBad), fake("x509", User{}, false, errOther)}, "", errBad},
		{"nothing presented", Union{fake("token", User{}, false, nil), fake("x509", User{}, false, nil)}, "", nil},
		{"nested union error not excused", Union{Union{fake("token", User{}, false, errBad)}, NewAnonymous()}, "", errBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok, err := tt.chain.AuthenticateRequest(httptest.NewRequest("GET", "/", nil))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if ok != (tt.want != "") || u.Name != tt.want {
				t.Fatalf("got %+v ok=%v, want %q", u, ok, tt.want)
			}
			if err != nil && err.Error() != tt.wantErr.Error() {
				t.Errorf("message %q, want the method's own %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnionMethodsAndChallenges(t *testing.T) {
	c := Union{fake("token", User{}, false, nil), Union{fake("x509", User{}, false, nil)}, NewAnonymous()}
	if got := c.Methods(); !slices.Equal(got, []string{"token", "x509", "anonymous"}) {
		t.Errorf("Methods = %q", got)
	}
	if got := c.Method(); got != "token, x509, anonymous" {
		t.Errorf("Method = %q", got)
	}
	if got := c.Challenges(); !slices.Equal(got, []string{"token-challenge", "x509-challenge"}) {
		t.Errorf("Challenges = %q", got)
	}
}

// Two methods of one scheme (the REST job tokens and the token file are both
// bearer tokens) offer one challenge, wherever they sit in the chain.
func TestUnionChallengesOncePerScheme(t *testing.T) {
	bearer := func(method string) Authenticator {
		return AuthenticatorFunc{Name: method, WWWAuthenticate: BearerChallenge, Func: func(*http.Request) (User, bool, error) { return User{}, false, nil }}
	}
	c := Union{bearer("job-token"), Union{fake("x509", User{}, false, nil), bearer(MethodToken)}, NewAnonymous(), Union{bearer("other")}}
	if got, want := c.Challenges(), []string{BearerChallenge, "x509-challenge"}; !slices.Equal(got, want) {
		t.Errorf("Challenges = %q, want %q", got, want)
	}
	if got := c.Methods(); !slices.Equal(got, []string{"job-token", "x509", MethodToken, "anonymous", "other"}) {
		t.Errorf("Methods = %q: every method is still listed", got)
	}
}

func TestAnonymous(t *testing.T) {
	a := NewAnonymous()
	u, ok, err := a.AuthenticateRequest(httptest.NewRequest("GET", "/", nil))
	if !ok || err != nil || u.Name != "system:anonymous" || !slices.Equal(u.Groups, []string{"system:unauthenticated"}) || u.Method != "anonymous" {
		t.Fatalf("got %+v %v %v", u, ok, err)
	}
	if a.Challenge() != "" || a.Method() != "anonymous" {
		t.Errorf("method %q challenge %q", a.Method(), a.Challenge())
	}
}

func TestBuild(t *testing.T) {
	x := fake("x509", User{}, false, nil)
	tok := fake("token", User{}, false, nil)
	all := Deps{X509: x, Token: tok}
	tests := []struct {
		methods []string
		deps    Deps
		want    []string
		wantErr string
	}{
		{[]string{"x509", "token", "anonymous"}, all, []string{"x509", "token", "anonymous"}, ""},
		{[]string{"Token", " x509 "}, all, []string{"token", "x509"}, ""},
		{[]string{"anonymous"}, Deps{}, []string{"anonymous"}, ""},
		{nil, all, nil, "no authentication methods: list at least one of x509, token, kerberos, anonymous"},
		{[]string{"password"}, all, nil, `unknown authentication method "password": known methods are x509, token, kerberos, anonymous`},
		{[]string{"token", "token"}, all, nil, `authentication method "token" is listed twice`},
		{[]string{"kerberos"}, all, nil, "kerberos authentication needs the service keytab and principal: set security.rest.authentication.kerberos.keytab and security.rest.authentication.kerberos.principal"},
		{[]string{"kerberos"}, Deps{Kerberos: fake("kerberos", User{}, false, nil)}, []string{"kerberos"}, ""},
		{[]string{"token"}, Deps{}, nil, "token authentication needs a token file: set security.rest.authentication.token.file"},
		{[]string{"x509"}, Deps{}, nil, "x509 authentication needs TLS with client certificates on the listener"},
		{[]string{"anonymous", "token"}, all, nil, "anonymous must be the last authentication method"},
	}
	for _, tt := range tests {
		c, err := Build(tt.methods, tt.deps)
		if tt.wantErr != "" {
			if err == nil || !contains(err.Error(), tt.wantErr) {
				t.Errorf("Build(%q) err = %v, want %q", tt.methods, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Build(%q): %v", tt.methods, err)
			continue
		}
		if got := c.Methods(); !slices.Equal(got, tt.want) {
			t.Errorf("Build(%q) = %q, want %q", tt.methods, got, tt.want)
		}
	}
}
