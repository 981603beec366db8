package restapi

// SubtaskDetails is one subtask of GET /jobs/{id}/vertices/{vid} (Flink's
// SubtaskExecutionAttemptDetailsInfo).
type SubtaskDetails struct {
	Subtask  int    `json:"subtask"`
	Status   string `json:"status"`
	Attempt  int    `json:"attempt"`
	Endpoint string `json:"endpoint"`
	// StartTime is spelled twice, as Flink does (start_time is its older name).
	StartTime      int64            `json:"start-time"`
	StartTimeOld   int64            `json:"start_time"`
	EndTime        int64            `json:"end-time"`
	Duration       int64            `json:"duration"`
	Metrics        IOMetrics        `json:"metrics"`
	TaskManagerID  string           `json:"taskmanager-id"`
	StatusDuration map[string]int64 `json:"status-duration"`
	// OtherConcurrentAttempts is always empty: sluice runs no speculative attempts.
	OtherConcurrentAttempts []SubtaskDetails `json:"other-concurrent-attempts"`
}

// AggregatedTaskDetails is the "aggregated" of GET /jobs/{id}/vertices/{vid}:
// per metric, min, max, avg and sum over the subtasks.
type AggregatedTaskDetails struct {
	Metrics        map[string]map[string]int64 `json:"metrics"`
	StatusDuration map[string]map[string]int64 `json:"status-duration"`
}

// VertexDetails is GET /jobs/{id}/vertices/{vid} (Flink's JobVertexDetailsInfo).
type VertexDetails struct {
	ID             string                `json:"id"`
	Name           string                `json:"name"`
	Parallelism    int                   `json:"parallelism"`
	MaxParallelism int                   `json:"maxParallelism"`
	Now            int64                 `json:"now"`
	Subtasks       []SubtaskDetails      `json:"subtasks"`
	Aggregated     AggregatedTaskDetails `json:"aggregated"`
}

// Back-pressure levels, Flink's: ok up to 10% of the time back-pressured,
// low up to 50%, high above.
const (
	BackPressureOK   = "ok"
	BackPressureLow  = "low"
	BackPressureHigh = "high"
)

// BackPressureLevel is the level of a back-pressure ratio, with Flink's
// thresholds.
func BackPressureLevel(ratio float64) string {
	switch {
	case ratio <= 0.10:
		return BackPressureOK
	case ratio <= 0.5:
		return BackPressureLow
	}
	return BackPressureHigh
}

// SubtaskBackPressure is one subtask of GET /jobs/{id}/vertices/{vid}/backpressure.
// Ratios are shares of wall time over the last sampling window.
type SubtaskBackPressure struct {
	Subtask       int `json:"subtask"`
	AttemptNumber int `json:"attempt-number"`
	// BackpressureLevel is spelled twice, as Flink does.
	BackpressureLevel    string  `json:"backpressureLevel"`
	BackpressureLevelOld string  `json:"backpressure-level"`
	Ratio                float64 `json:"ratio"`
	IdleRatio            float64 `json:"idleRatio"`
	BusyRatio            float64 `json:"busyRatio"`
	// OtherConcurrentAttempts is always empty: sluice runs no speculative attempts.
	OtherConcurrentAttempts []SubtaskBackPressure `json:"other-concurrent-attempts"`
}

// Back-pressure statuses: ok once every subtask has been sampled.
const (
	BackPressureStatusOK         = "ok"
	BackPressureStatusDeprecated = "deprecated"
)

// VertexBackPressure is GET /jobs/{id}/vertices/{vid}/backpressure
// (Flink's JobVertexBackPressureInfo). The vertex's level is its worst
// subtask's.
type VertexBackPressure struct {
	Status               string                `json:"status"`
	BackpressureLevel    string                `json:"backpressureLevel"`
	BackpressureLevelOld string                `json:"backpressure-level"`
	EndTimestamp         int64                 `json:"end-timestamp"`
	Subtasks             []SubtaskBackPressure `json:"subtasks"`
}
