package taskmanager

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRegistrationProblem: each registration failure names its likely
// cause and the key to fix on this side, and only failures that retrying
// can fix are transient.
func TestRegistrationProblem(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		secured   bool
		permanent bool
		want      string
	}{
		{"plaintext against TLS", status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: EOF"`), false, true, "security.ssl.internal.enabled"},
		{"TLS against plaintext", status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`), true, true, "does not speak TLS"},
		{"refused certificate", status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: remote error: tls: bad certificate"`), true, true, "security.ssl.internal.keystore"},
		{"revoked", status.Error(codes.PermissionDenied, "this TaskManager's certificate was revoked (x)"), true, true, "revoked"},
		{"wrong identity", status.Error(codes.PermissionDenied, `spiffe://c/taskmanager/a may not act as taskmanager "b"`), true, true, "refused this TaskManager's identity"},
		{"id taken", status.Error(codes.AlreadyExists, `taskmanager id "x" is already registered by a live TaskManager`), true, true, "already registered"},
		{"JobManager down", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:6123: connect: connection refused"`), false, false, "jobmanager.rpc.address"},
		{"JobManager down, TLS", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:6123: connect: connection refused"`), true, false, "jobmanager.rpc.port"},
		{"timeout", errors.New("context deadline exceeded"), true, false, "not reachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hint, permanent := registrationProblem(tt.err, "127.0.0.1:6123", tt.secured)
			if permanent != tt.permanent || !strings.Contains(hint, tt.want) {
				t.Errorf("permanent=%v hint=%q, want permanent=%v and %q", permanent, hint, tt.permanent, tt.want)
			}
		})
	}
}
