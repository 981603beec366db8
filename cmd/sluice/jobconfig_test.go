package main

import (
	"strings"
	"testing"
)

func TestSplitRunDefines(t *testing.T) {
	job, client, err := splitRunDefines([]string{"parallelism.default=2", "restart-strategy.type=none", "rest.address=jm",
		"security.ssl.rest.truststore=/ca.p12", "foo.bar=1"})
	if err != nil {
		t.Fatal(err)
	}
	if job["parallelism.default"] != "2" || job["restart-strategy.type"] != "none" || len(job) != 2 {
		t.Errorf("job settings %v", job)
	}
	if strings.Join(client, " ") != "rest.address=jm security.ssl.rest.truststore=/ca.p12 foo.bar=1" {
		t.Errorf("client settings %v", client)
	}
	for _, d := range []string{"taskmanager.numberOfTaskSlots=4", "security.ssl.internal.enabled=false", "jobmanager.rpc.port=1"} {
		if _, _, err := splitRunDefines([]string{d}); err == nil || !strings.Contains(err.Error(), "cannot apply to one job") {
			t.Errorf("%s: %v", d, err)
		}
	}
}
