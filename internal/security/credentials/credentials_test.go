package credentials

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestTokenNeverPrintsSecret: no formatting of a token, by value or pointer, alone or in a
// struct, nor slog, shows its secret.
func TestTokenNeverPrintsSecret(t *testing.T) {
	tk := Token{Service: "kafka", ID: "tok-1", Secret: "hmac-secret", Expires: time.Now()}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "token", tk, "ptr", &tk)
	outs := []string{logs.String()}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		outs = append(outs, fmt.Sprintf(f, tk), fmt.Sprintf(f, &tk), fmt.Sprintf(f, struct{ T Token }{tk}), fmt.Sprintf(f, []Token{tk}))
	}
	for _, o := range outs {
		if strings.Contains(o, "hmac-secret") {
			t.Errorf("secret shown: %s", o)
		}
		if !strings.Contains(o, "tok-1") {
			t.Errorf("token id not shown: %s", o)
		}
	}
}
