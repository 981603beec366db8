package jobmanager

import "context"

// ResourceManager starts TaskManagers when jobs wait for slots and stops
// the ones that stay idle (Flink's active resource manager; the native
// Kubernetes one is internal/kubernetes/resourcemanager). It runs for as
// long as the JobManager.
type ResourceManager interface {
	Run(ctx context.Context, c SlotView)
}

// SlotView is what a resource manager sees of the JobManager.
type SlotView interface {
	// Slots returns the slots waiting jobs need beyond the free ones, and
	// every registered TaskManager with the slots it has in use.
	Slots() SlotDemand
	// ReportResourceProblem records, for every job waiting for slots, why
	// the TaskManagers started for it do not come (a pod's reason); ""
	// clears it. GET /jobs/{id} shows it.
	ReportResourceProblem(problem string)
	// RPCAddress is the control plane TaskManagers register at.
	RPCAddress() string
}

// SlotDemand is a snapshot of the slots jobs need and have.
type SlotDemand struct {
	// Missing is how many more slots the waiting jobs need than are free.
	Missing int
	// TaskManagers are the registered TaskManagers by id.
	TaskManagers map[string]TaskManagerSlots
}

// TaskManagerSlots are one TaskManager's slots.
type TaskManagerSlots struct {
	Total, Free int
}

// Slots implements SlotView.
func (jm *JobManager) Slots() SlotDemand {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	d := SlotDemand{TaskManagers: map[string]TaskManagerSlots{}}
	free := 0
	for id, tm := range jm.tms {
		d.TaskManagers[id] = TaskManagerSlots{Total: tm.slots, Free: tm.free}
		free += tm.free
	}
	wanted := 0
	for _, j := range jm.jobs {
		if j.waitingFor > 0 && !j.state.Terminal() {
			wanted += j.waitingFor
		}
	}
	d.Missing = max(wanted-free, 0)
	return d
}

// ReportResourceProblem implements SlotView.
func (jm *JobManager) ReportResourceProblem(problem string) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if problem != jm.resourceProblem && problem != "" {
		jm.log.Warn("taskmanagers are not starting", "problem", problem)
	}
	jm.resourceProblem = problem
}
