package taskmanager

import (
	"testing"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// TestPlanOptionsFromDeployment: a TaskManager plans with the settings the
// JobManager planned with, pipeline.max-parallelism among them: with another
// number of key groups its hash edges would send keys to other subtasks.
func TestPlanOptionsFromDeployment(t *testing.T) {
	d := &controlpb.TaskDeployment{DefaultParallelism: 3, ExpressionMaxCost: 99, MaxParallelism: 7}
	o := planOptions(d, nil)
	if o.DefaultParallelism != 3 || o.MaxExpressionCost != 99 || o.MaxParallelism != 7 {
		t.Errorf("plan options %+v from deployment %v", o, d)
	}
}
