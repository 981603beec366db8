package taskmanager

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// newInstanceID returns the random id of this TaskManager process. The
// JobManager lets the same instance register again under its id after a
// transient disconnect, and refuses another process while the id is live.
func newInstanceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// registrationProblem explains a failed registration: the likely cause,
// the configuration to fix on this TaskManager, and whether retrying can
// help (permanent: it cannot until someone changes something, so the
// TaskManager says so loudly and exits at taskmanager.registration.timeout).
func registrationProblem(err error, jmAddr string, secured bool) (hint string, permanent bool) {
	st := status.Convert(err)
	msg := st.Message()
	switch st.Code() {
	case codes.AlreadyExists:
		return msg, true
	case codes.PermissionDenied:
		return "the JobManager refused this TaskManager's identity: " + msg, true
	case codes.Unauthenticated:
		return "the JobManager requires a client certificate: " + msg + " (set security.ssl.internal.keystore, or join with --join-token in automatic mode)", true
	}
	lower := strings.ToLower(msg)
	switch {
	case !secured && (strings.Contains(lower, "server preface") || strings.Contains(lower, "eof") || strings.Contains(lower, "connection reset")):
		return fmt.Sprintf("the JobManager at %s closed the connection before speaking the control protocol: it most likely requires TLS on internal connections, and this TaskManager connects in plaintext (security.ssl.internal.enabled is false here): set security.ssl.internal.enabled: true with the cluster's security.ssl.internal.keystore and .truststore on this TaskManager (or --join-token when the JobManager runs security.ssl.internal.auto) [%s]", jmAddr, msg), true
	case secured && strings.Contains(lower, "first record does not look like a tls handshake"):
		return fmt.Sprintf("the JobManager at %s does not speak TLS on its RPC port, and this TaskManager has internal TLS on: use the same security.ssl.internal.enabled / security.ssl.internal.auto on both (or rpc.ssl.enabled) [%s]", jmAddr, msg), true
	case secured && strings.Contains(lower, "revoked"):
		return "this TaskManager's certificate was revoked by an administrator: " + msg, true
	case secured && (strings.Contains(lower, "tls:") || strings.Contains(lower, "x509:") || strings.Contains(lower, "authentication handshake failed")):
		return fmt.Sprintf("TLS handshake with the JobManager at %s failed: %s (check security.ssl.internal.keystore, .truststore and .cert.fingerprint on this TaskManager against the JobManager's; its log says which side refused)", jmAddr, msg), true
	}
	return fmt.Sprintf("the JobManager at %s is not reachable (check jobmanager.rpc.address and jobmanager.rpc.port, and that it runs): %s", jmAddr, msg), false
}
