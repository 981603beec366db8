package jobmanager_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestShippedTokensRefusedOverPlaintext: a submission carrying delegation tokens (sluice run
// --kerberos) to a plaintext listener is refused, the answer saying why and what to do, and
// never echoing the secret.
func TestShippedTokensRefusedOverPlaintext(t *testing.T) {
	_, base := startCluster(t, config.New())
	const secret = "c2VjcmV0LWhtYWMtb2YtdGhlLXRva2Vu"
	body, _ := json.Marshal(map[string]any{"spec": genJob, "delegation-tokens": []map[string]any{
		{"service": "kafka", "id": "tok-1", "secret": secret, "expires": time.Now().Add(time.Hour)},
	}})
	code, out := do(t, "POST", base+"/jobs", "application/json", body)
	if code != http.StatusBadRequest || !strings.Contains(out, "accepted only over TLS") || strings.Contains(out, secret) {
		t.Fatalf("%d %s", code, out)
	}
}
