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

// TestRunDefinesCheckpointKeys: the checkpoint and restart keys a job may set go with the job
// (under their canonical names); where checkpoints go and the key that seals them are the
// cluster's, under any of their names.
func TestRunDefinesCheckpointKeys(t *testing.T) {
	job, _, err := splitRunDefines([]string{"execution.checkpointing.interval=1 s", "execution.checkpointing.mode=at_least_once",
		"execution.checkpointing.incremental=true", "restart-strategy.type=exponentialdelay",
		"restart-strategy.exponential-delay.jitter-factor=0", "execution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION"})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"execution.checkpointing.interval": "1 s", "execution.checkpointing.mode": "at_least_once", "state.backend.incremental": "true",
		"restart-strategy.type": "exponentialdelay", "restart-strategy.exponential-delay.jitter-factor": "0",
		"execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
	} {
		if job[k] != v {
			t.Errorf("job setting %s = %q, want %q (all: %v)", k, job[k], v, job)
		}
	}
	for _, d := range []string{"state.checkpoints.dir=/srv/ckpt", "execution.checkpointing.dir=/srv/ckpt", "state.savepoints.dir=/srv/sp",
		"state.checkpoints.num-retained=3", "state.checkpoints.encryption.key-file=/k"} {
		if _, _, err := splitRunDefines([]string{d}); err == nil || !strings.Contains(err.Error(), "cannot apply to one job") {
			t.Errorf("%s: %v", d, err)
		}
	}
}
