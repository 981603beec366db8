package ha

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

func TestSettingsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     map[string]string
		wantErr string // "" for valid
		want    Type
	}{
		{"off by default", nil, "", None},
		{"kubernetes", map[string]string{"high-availability.type": "kubernetes", "kubernetes.cluster-id": "c1", "high-availability.storageDir": "/ha"}, "", Kubernetes},
		{"Flink's old key", map[string]string{"high-availability": "KUBERNETES", "kubernetes.cluster-id": "c1", "high-availability.storageDir": "file:///ha"}, "", Kubernetes},
		{"zookeeper", map[string]string{"high-availability.type": "zookeeper"}, "zookeeper is not supported", None},
		{"unknown", map[string]string{"high-availability.type": "etcd"}, "use kubernetes or NONE", None},
		{"no cluster id", map[string]string{"high-availability.type": "kubernetes", "high-availability.storageDir": "/ha"}, "set kubernetes.cluster-id", None},
		{"bad cluster id", map[string]string{"high-availability.type": "kubernetes", "high-availability.cluster-id": "My_Cluster", "high-availability.storageDir": "/ha"}, "not a valid Kubernetes object name", None},
		{"no storage dir", map[string]string{"high-availability.type": "kubernetes", "kubernetes.cluster-id": "c1"}, "high-availability.storageDir", None},
		{"renew not below lease", map[string]string{"high-availability.type": "kubernetes", "kubernetes.cluster-id": "c1", "high-availability.storageDir": "/ha",
			"high-availability.kubernetes.leader-election.renew-deadline": "15 s"}, "renew-deadline (15s) must be below", None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.New()
			for k, v := range tc.set {
				if err := cfg.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			s, err := SettingsFromConfig(cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || s.Type != tc.want {
				t.Fatalf("= %+v, %v", s, err)
			}
			if s.Enabled() && (s.ClusterID != "c1" || s.StorageDir != "/ha") {
				t.Fatalf("settings %+v", s)
			}
		})
	}
}
