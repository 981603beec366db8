package tokens

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/credentials"
	"google.golang.org/protobuf/proto"
)

// FuzzTokenSet reads token sets as a TaskManager receives them on the control plane (the
// protobuf bytes of a TokenSet): never a panic; a set converts back to the same message (no
// token, attribute or expiry lost); the receiver installs a job's set only over an older
// version, and hands out copies a connector cannot change in place.
func FuzzTokenSet(f *testing.F) {
	exp := time.UnixMilli(1900000000000)
	for _, s := range []Set{
		{Job: "j1", Version: 3, Tokens: []credentials.Token{{Service: "kafka", ID: "tid", Secret: "hmac", Mechanism: "SCRAM-SHA-512", Expires: exp, Attributes: map[string]string{"owner": "alice"}}}},
		{Job: "j2", Version: 1, Tokens: []credentials.Token{{Service: "postgres", Secret: "pw"}, {Service: "unknown"}, {Service: "sluice", Secret: RESTTokenPrefix + "x"}}},
	} {
		b, err := proto.Marshal(ToProto(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x01, 'j', 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p controlpb.TokenSet
		if err := proto.Unmarshal(b, &p); err != nil {
			return
		}
		s := FromProto(&p)
		if len(p.Tokens) > 0 {
			back := ToProto(s)
			for i, tk := range p.Tokens {
				want := proto.Clone(tk).(*controlpb.DelegationToken)
				want.ProtoReflect().SetUnknown(nil) // fields of a newer JobManager: not this one's
				if want.ExpiresUnixMs < 0 {
					want.ExpiresUnixMs = 0
				}
				got := back.Tokens[i]
				if got.ExpiresUnixMs < 0 || tk.ExpiresUnixMs <= 0 {
					got.ExpiresUnixMs = want.ExpiresUnixMs // zero and negative: no expiry
				}
				if len(want.Attributes) == 0 && len(got.Attributes) == 0 {
					want.Attributes, got.Attributes = nil, nil
				}
				if !proto.Equal(want, got) {
					t.Fatalf("token %d: %v converts back to %v", i, want, got)
				}
			}
		}
		r := NewReceiver(nil)
		r.now = func() time.Time { return time.UnixMilli(1) }
		installed := r.Install(s)
		if installed != (s.Job != "") {
			t.Fatalf("Install(%q version %d) = %v", s.Job, s.Version, installed)
		}
		if r.Install(s) {
			t.Fatalf("the same version of %q was installed twice", s.Job)
		}
		for _, svc := range []string{"kafka", "postgres", "sluice"} {
			c, err := r.For(s.Job).Credentials(context.Background(), svc)
			if err != nil {
				continue
			}
			tk := c.(*credentials.Token)
			if tk.Service != svc {
				t.Fatalf("asked for %s, got a %s token", svc, tk.Service)
			}
			for k := range tk.Attributes {
				tk.Attributes[k] = "changed"
			}
			again, _ := r.For(s.Job).Credentials(context.Background(), svc)
			for k, v := range again.(*credentials.Token).Attributes {
				if v == "changed" && s.Tokens[0].Attributes[k] != "changed" {
					t.Fatalf("a connector changed the receiver's token")
				}
			}
		}
	})
}

// FuzzJobTokenHeader sends any Authorization header to the job-token authenticator: it
// authenticates only the exact token it issued (Bearer, any case, surrounding spaces), has
// no opinion on what is not a job token, and never panics.
func FuzzJobTokenHeader(f *testing.F) {
	p := NewRESTTokens(time.Hour)
	toks, _, err := p.Obtain(context.Background(), Job{ID: "j1"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	secret := toks[0].Secret
	for _, h := range []string{"Bearer " + secret, "bearer  " + secret + " ", "Bearer " + secret + "x", "Bearer " + RESTTokenPrefix,
		"Basic " + secret, "Bearer", "", "Bearer " + strings.ToUpper(secret), "Bearer\t" + secret} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest("GET", "/jobs", nil)
		req.Header.Set("Authorization", h)
		u, ok, err := p.AuthenticateRequest(req)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("authenticated with an error: %v", err)
		}
		_, tok, _ := strings.Cut(req.Header.Get("Authorization"), " ")
		if strings.TrimSpace(tok) != secret || u.Name != JobUserPrefix+"j1" {
			t.Fatalf("header %q authenticated as %q", h, u.Name)
		}
	})
}
