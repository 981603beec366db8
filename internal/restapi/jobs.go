package restapi

// JobSummary is one entry of GET /jobs/overview (Flink's JobDetails).
type JobSummary struct {
	ID           string         `json:"jid"`
	Name         string         `json:"name"`
	State        string         `json:"state"`
	StartTime    int64          `json:"start-time"`
	EndTime      int64          `json:"end-time"`
	Duration     int64          `json:"duration"`
	LastModified int64          `json:"last-modification"`
	Tasks        map[string]int `json:"tasks"`
}

// JobsOverview is GET /jobs/overview.
type JobsOverview struct {
	Jobs []JobSummary `json:"jobs"`
}

// JobIDWithStatus is one entry of GET /jobs.
type JobIDWithStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// JobIDsWithStatus is GET /jobs.
type JobIDsWithStatus struct {
	Jobs []JobIDWithStatus `json:"jobs"`
}

// IOMetrics are a vertex's or a subtask's counters (Flink's IOMetricsInfo).
type IOMetrics struct {
	ReadBytes            int64 `json:"read-bytes"`
	ReadBytesComplete    bool  `json:"read-bytes-complete"`
	WriteBytes           int64 `json:"write-bytes"`
	WriteBytesComplete   bool  `json:"write-bytes-complete"`
	ReadRecords          int64 `json:"read-records"`
	ReadRecordsComplete  bool  `json:"read-records-complete"`
	WriteRecords         int64 `json:"write-records"`
	WriteRecordsComplete bool  `json:"write-records-complete"`
	// AccumulatedBackpressured is the time (ms) the subtasks' output waited for
	// credit from downstream; AccumulatedIdle the time their input waited for
	// data; AccumulatedBusy the rest of their running time.
	AccumulatedBackpressured int64   `json:"accumulated-backpressured-time"`
	AccumulatedIdle          int64   `json:"accumulated-idle-time"`
	AccumulatedBusy          float64 `json:"accumulated-busy-time"`
	// NumLateRecordsDropped is sluice's own: records the vertex's windows
	// dropped as later than their allowed lateness.
	NumLateRecordsDropped int64 `json:"numLateRecordsDropped"`
}

// JobVertex is one vertex of GET /jobs/{id} (Flink's JobVertexDetailsInfo).
type JobVertex struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Parallelism    int            `json:"parallelism"`
	MaxParallelism int            `json:"maxParallelism"`
	Status         string         `json:"status"`
	StartTime      int64          `json:"start-time"`
	EndTime        int64          `json:"end-time"`
	Duration       int64          `json:"duration"`
	Tasks          map[string]int `json:"tasks"`
	Metrics        IOMetrics      `json:"metrics"`
	// SlotSharingGroupID is Flink's: every vertex of a sluice job shares
	// the job's slots (subtask i of each vertex runs in slot i).
	SlotSharingGroupID string `json:"slotSharingGroupId"`
	// Operators are sluice's own: the operators chained into the vertex.
	Operators []string `json:"operators"`
}

// ACL is a job's view and modify lists (sluice's own).
type ACL struct {
	ViewUsers    []string `json:"view-users"`
	ViewGroups   []string `json:"view-groups"`
	ModifyUsers  []string `json:"modify-users"`
	ModifyGroups []string `json:"modify-groups"`
}

// CheckpointCounts are the counts of GET /jobs/{id}/checkpoints, repeated
// in GET /jobs/{id}.
type CheckpointCounts struct {
	Restored   int64 `json:"restored"`
	Total      int64 `json:"total"`
	InProgress int64 `json:"in_progress"`
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
}

// JobDetails is GET /jobs/{id} (Flink's JobDetailsInfo, and sluice's own
// fields after it).
type JobDetails struct {
	ID             string           `json:"jid"`
	Name           string           `json:"name"`
	State          string           `json:"state"`
	StartTime      int64            `json:"start-time"`
	EndTime        int64            `json:"end-time"`
	Duration       int64            `json:"duration"`
	Now            int64            `json:"now"`
	Timestamps     map[string]int64 `json:"timestamps"`
	Vertices       []JobVertex      `json:"vertices"`
	MaxParallelism int              `json:"maxParallelism"`
	JobType        string           `json:"job-type"`
	IsStoppable    bool             `json:"isStoppable"`
	StatusCounts   map[string]int   `json:"status-counts"`
	Plan           *Plan            `json:"plan,omitempty"`
	// PendingOperators is Flink's count of operators not yet created: 0, as
	// sluice deploys a job's whole graph at once.
	PendingOperators int `json:"pending-operators"`

	Attempt       int      `json:"attempt"`
	Restarts      int      `json:"restarts"`
	Parallelism   int      `json:"parallelism"`
	FailureCause  string   `json:"failure-cause,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
	Owner         string   `json:"owner,omitempty"`
	ACL           *ACL     `json:"acl,omitempty"`
	PendingReason string   `json:"pending-reason,omitempty"`
	// PrintedLines counts the lines the job's print sinks printed so far (the
	// end offset of GET /jobs/{id}/output).
	PrintedLines int64             `json:"printed-lines,omitempty"`
	Checkpoints  *CheckpointCounts `json:"checkpoints,omitempty"`
}

// JobPlan is GET /jobs/{id}/plan (Flink's JobPlanInfo).
type JobPlan struct {
	Plan Plan `json:"plan"`
}

// Plan is a job's dataflow graph: its vertices and, on each, the edges into it.
type Plan struct {
	JID   string     `json:"jid"`
	Name  string     `json:"name"`
	Type  string     `json:"type"` // STREAMING or BATCH
	Nodes []PlanNode `json:"nodes"`
}

// PlanNode is one vertex of a Plan.
type PlanNode struct {
	ID               string      `json:"id"`
	Parallelism      int         `json:"parallelism"`
	Operator         string      `json:"operator"`
	OperatorStrategy string      `json:"operator_strategy"`
	Description      string      `json:"description"`
	Inputs           []PlanInput `json:"inputs,omitempty"`
	// OptimizerProperties is empty, as in Flink's streaming plans.
	OptimizerProperties map[string]any `json:"optimizer_properties"`
	// Operators are sluice's own: the operators chained into the vertex.
	Operators []string `json:"operators"`
}

// PlanInput is one edge into a PlanNode.
type PlanInput struct {
	Num int `json:"num"`
	// ID is the upstream vertex.
	ID string `json:"id"`
	// ShipStrategy is the edge's partitioning in Flink's words: FORWARD,
	// HASH, REBALANCE.
	ShipStrategy string `json:"ship_strategy"`
	// LocalStrategy and Caching are Flink's, which it writes only when an
	// edge has them; sluice's edges have neither.
	LocalStrategy string `json:"local_strategy,omitempty"`
	Caching       string `json:"caching,omitempty"`
	Exchange      string `json:"exchange"`
	// Key is sluice's own: a HASH edge's key.
	Key string `json:"key,omitempty"`
	// SideOutput is sluice's own: OPERATOR.TAG of the side output the edge carries.
	SideOutput string `json:"side_output,omitempty"`
}

// ExecutionConfig is the "execution-config" of GET /jobs/{id}/config.
type ExecutionConfig struct {
	ExecutionMode   string `json:"execution-mode"`
	RestartStrategy string `json:"restart-strategy"`
	JobParallelism  int    `json:"job-parallelism"`
	ObjectReuseMode bool   `json:"object-reuse-mode"`
	// UserConfig are the job's parameters (--param).
	UserConfig map[string]string `json:"user-config"`
}

// JobConfig is GET /jobs/{id}/config (Flink's JobConfigInfo).
type JobConfig struct {
	JID             string          `json:"jid"`
	Name            string          `json:"name"`
	ExecutionConfig ExecutionConfig `json:"execution-config"`
	// Settings are sluice's own: the configuration keys the job was
	// submitted with, sensitive values masked.
	Settings map[string]string `json:"settings,omitempty"`
}

// QueueStatus is the "status" of an asynchronous result: IN_PROGRESS or COMPLETED.
type QueueStatus struct {
	ID string `json:"id"`
}

// Queue states.
const (
	InProgress = "IN_PROGRESS"
	Completed  = "COMPLETED"
)

// SerializedThrowable is a failure cause in Flink's shape.
type SerializedThrowable struct {
	Class      string `json:"class"`
	StackTrace string `json:"stack-trace"`
	// Message is the cause in one line.
	Message string `json:"message,omitempty"`
}

// JobResult is the "job-execution-result" of GET /jobs/{id}/execution-result.
type JobResult struct {
	ID string `json:"id"`
	// ApplicationStatus is SUCCEEDED, FAILED, CANCELED or UNKNOWN.
	ApplicationStatus  string               `json:"application-status"`
	AccumulatorResults map[string]any       `json:"accumulator-results"`
	NetRuntime         int64                `json:"net-runtime"`
	FailureCause       *SerializedThrowable `json:"failure-cause,omitempty"`
}

// ExecutionResult is GET /jobs/{id}/execution-result: IN_PROGRESS until the
// job ends, then COMPLETED with its result.
type ExecutionResult struct {
	Status QueueStatus `json:"status"`
	Result *JobResult  `json:"job-execution-result,omitempty"`
}

// Submitted is the answer to POST /jobs (Flink's JarRunResponseBody, and
// sluice's warnings).
type Submitted struct {
	ID string `json:"jobid"`
	// Warnings are things about the job the submitter should know, e.g. a
	// checkpoint setting the cluster overrides.
	Warnings []string `json:"warnings,omitempty"`
}

// JobOutput is one page of GET /jobs/{id}/output (sluice's own): what the
// job's print sinks printed.
type JobOutput struct {
	Lines []string `json:"lines"`
	// NextOffset is the offset to ask for next. The JobManager keeps a job's last lines
	// only: when the ones asked for are gone, Lines starts later, and NextOffset minus the
	// offset asked for exceeds len(Lines) by the lines lost.
	NextOffset int64 `json:"next-offset"`
	// Dropped counts the job's lines that never reached the JobManager (a TaskManager
	// dropped them while the JobManager was slow or away).
	Dropped int64 `json:"dropped"`
}

// SavepointTriggered is the answer to POST /jobs/{id}/savepoints and
// POST /jobs/{id}/stop (Flink's TriggerResponse).
type SavepointTriggered struct {
	RequestID string `json:"request-id"`
}

// SavepointStatus is GET /jobs/{id}/savepoints/{triggerid}, in Flink's
// shape: IN_PROGRESS, or COMPLETED with operation.location, or with
// operation.failure-cause when the savepoint failed.
type SavepointStatus struct {
	Status    QueueStatus         `json:"status"`
	Operation *SavepointOperation `json:"operation,omitempty"`
}

// SavepointOperation is the outcome of a savepoint.
type SavepointOperation struct {
	Location     string        `json:"location,omitempty"`
	FailureCause *FailureCause `json:"failure-cause,omitempty"`
}

// FailureCause is why an asynchronous operation failed.
type FailureCause struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// SavepointRequest is the body of POST /jobs/{id}/savepoints (Flink's
// SavepointTriggerRequestBody).
type SavepointRequest struct {
	TargetDirectory string `json:"target-directory,omitempty"`
	CancelJob       bool   `json:"cancel-job"`
}

// StopRequest is the body of POST /jobs/{id}/stop (Flink's
// StopWithSavepointRequestBody).
type StopRequest struct {
	TargetDirectory string `json:"targetDirectory,omitempty"`
	Drain           bool   `json:"drain"`
}

// CheckpointConfig is GET /jobs/{id}/checkpoints/config (Flink's
// CheckpointConfigInfo, and sluice's own incremental and sealing).
type CheckpointConfig struct {
	Mode                        string          `json:"mode"`
	Interval                    int64           `json:"interval"` // ms; Long.MAX_VALUE when disabled, as Flink
	Timeout                     int64           `json:"timeout"`
	MinPause                    int64           `json:"min_pause"`
	MaxConcurrent               int             `json:"max_concurrent"`
	Externalization             Externalization `json:"externalization"`
	StateBackend                string          `json:"state_backend"`
	CheckpointStorage           string          `json:"checkpoint_storage"`
	UnalignedCheckpoints        bool            `json:"unaligned_checkpoints"`
	TolerableFailedCheckpoints  int             `json:"tolerable_failed_checkpoints"`
	CheckpointsAfterTasksFinish bool            `json:"checkpoints_after_tasks_finish"`
	Incremental                 bool            `json:"incremental"`
	Sealing                     string          `json:"sealing"`
}

// Externalization says whether checkpoints are kept on cancellation.
type Externalization struct {
	Enabled              bool `json:"enabled"`
	DeleteOnCancellation bool `json:"delete_on_cancellation"`
}
