package ha

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// Type is high-availability.type.
type Type string

// High-availability types.
const (
	None       Type = "NONE"
	Kubernetes Type = "kubernetes"
)

// Settings are the high-availability.* keys.
type Settings struct {
	Type          Type
	StorageDir    string        // high-availability.storageDir
	ClusterID     string        // high-availability.cluster-id, else kubernetes.cluster-id
	Namespace     string        // kubernetes.namespace
	LeaseDuration time.Duration // high-availability.kubernetes.leader-election.lease-duration
	RenewDeadline time.Duration // ...renew-deadline
	RetryPeriod   time.Duration // ...retry-period
}

// Enabled reports whether high availability is on.
func (s Settings) Enabled() bool { return s.Type != None }

// SettingsFromConfig reads and checks the high-availability keys. Errors
// name the key to fix.
func SettingsFromConfig(cfg *config.Config) (Settings, error) {
	s := Settings{
		StorageDir:    cfg.String("high-availability.storageDir"),
		ClusterID:     cfg.String("high-availability.cluster-id"),
		Namespace:     cfg.String("kubernetes.namespace"),
		LeaseDuration: cfg.Duration("high-availability.kubernetes.leader-election.lease-duration"),
		RenewDeadline: cfg.Duration("high-availability.kubernetes.leader-election.renew-deadline"),
		RetryPeriod:   cfg.Duration("high-availability.kubernetes.leader-election.retry-period"),
	}
	switch t := strings.TrimSpace(cfg.String("high-availability.type")); strings.ToLower(t) {
	case "", "none":
		s.Type = None
		return s, nil
	case "kubernetes":
		s.Type = Kubernetes
	case "zookeeper":
		return s, fmt.Errorf("high-availability.type: zookeeper is not supported by sluice: use kubernetes (leader election through a Lease) or NONE")
	default:
		return s, fmt.Errorf("high-availability.type: %q is not a high-availability type: use kubernetes or NONE", t)
	}
	if s.ClusterID == "" || s.ClusterID == "/default" {
		s.ClusterID = cfg.String("kubernetes.cluster-id")
	}
	if s.ClusterID == "" {
		return s, fmt.Errorf("high-availability.type kubernetes needs a cluster id naming its Lease and ConfigMaps: set kubernetes.cluster-id (or high-availability.cluster-id)")
	}
	if !validName(s.ClusterID) {
		return s, fmt.Errorf("high-availability.cluster-id / kubernetes.cluster-id %q is not a valid Kubernetes object name: use lower-case letters, digits and '-', starting with a letter, at most 40 characters", s.ClusterID)
	}
	if s.StorageDir == "" {
		return s, fmt.Errorf("high-availability.type kubernetes needs high-availability.storageDir: set it to a directory every JobManager replica mounts (the submitted jobs are stored there)")
	}
	s.StorageDir = strings.TrimPrefix(s.StorageDir, "file://")
	if s.RenewDeadline >= s.LeaseDuration {
		return s, fmt.Errorf("high-availability.kubernetes.leader-election.renew-deadline (%s) must be below high-availability.kubernetes.leader-election.lease-duration (%s): a leader must give up before its lease can be taken", s.RenewDeadline, s.LeaseDuration)
	}
	if s.RetryPeriod >= s.RenewDeadline {
		return s, fmt.Errorf("high-availability.kubernetes.leader-election.retry-period (%s) must be below high-availability.kubernetes.leader-election.renew-deadline (%s)", s.RetryPeriod, s.RenewDeadline)
	}
	return s, nil
}

// validName checks a cluster id against what the object names built from
// it need (DNS-1123 labels, with room for the suffixes).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
