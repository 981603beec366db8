package checkpoint

import (
	"math"
	"slices"
)

// Stats is GET /jobs/{id}/checkpoints in Flink's shape and field names.
type Stats struct {
	Counts  Counts             `json:"counts"`
	Summary Summary            `json:"summary"`
	Latest  Latest             `json:"latest"`
	History []*CheckpointStats `json:"history"` // newest first, at most HistorySize
}

// Counts counts snapshots (savepoints included) and restores.
type Counts struct {
	Restored   int64 `json:"restored"`
	Total      int64 `json:"total"`
	InProgress int64 `json:"in_progress"`
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
}

// Summary summarises the completed snapshots. Durations are in ms,
// alignment_duration (a sluice addition) in ns.
type Summary struct {
	StateSize         Quantiles `json:"state_size"`
	CheckpointedSize  Quantiles `json:"checkpointed_size"`
	EndToEndDuration  Quantiles `json:"end_to_end_duration"`
	AlignmentDuration Quantiles `json:"alignment_duration"`
}

// Quantiles is one summarised number.
type Quantiles struct {
	Min  int64   `json:"min"`
	Max  int64   `json:"max"`
	Avg  float64 `json:"avg"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

// Latest is the latest snapshot of each outcome; null when none.
type Latest struct {
	Completed *CheckpointStats `json:"completed"`
	Savepoint *CheckpointStats `json:"savepoint"`
	Failed    *CheckpointStats `json:"failed"`
	Restored  *RestoredStats   `json:"restored"`
}

// Snapshot statuses.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusCompleted  = "COMPLETED"
	StatusFailed     = "FAILED"
)

// CheckpointStats is one snapshot. Timestamps are Unix ms, durations ms
// except AlignmentDuration (ns, the largest of its subtasks').
type CheckpointStats struct {
	ID                      int64  `json:"id"`
	Status                  string `json:"status"`
	IsSavepoint             bool   `json:"is_savepoint"`
	TriggerTimestamp        int64  `json:"trigger_timestamp"`
	LatestAckTimestamp      int64  `json:"latest_ack_timestamp"`
	StateSize               int64  `json:"state_size"`
	CheckpointedSize        int64  `json:"checkpointed_size"`
	EndToEndDuration        int64  `json:"end_to_end_duration"`
	AlignmentDuration       int64  `json:"alignment_duration"`
	NumSubtasks             int    `json:"num_subtasks"`
	NumAcknowledgedSubtasks int    `json:"num_acknowledged_subtasks"`
	CheckpointType          string `json:"checkpoint_type"`
	ExternalPath            string `json:"external_path,omitempty"`
	Discarded               bool   `json:"discarded"`
	FailureTimestamp        int64  `json:"failure_timestamp,omitempty"`
	FailureMessage          string `json:"failure_message,omitempty"`
}

// RestoredStats is the latest restore.
type RestoredStats struct {
	ID               int64  `json:"id"`
	RestoreTimestamp int64  `json:"restore_timestamp"`
	IsSavepoint      bool   `json:"is_savepoint"`
	ExternalPath     string `json:"external_path"`
}

// Metrics are the numbers behind the job's checkpoint metrics on
// /metrics, with Flink's names.
type Metrics struct {
	LastCheckpointDuration         int64 // ms, latest completed checkpoint
	LastCheckpointSize             int64 // bytes (checkpointed size)
	NumberOfCompletedCheckpoints   int64
	NumberOfFailedCheckpoints      int64
	NumberOfInProgressCheckpoints  int64
	TotalNumberOfCheckpoints       int64
	LastCheckpointRestoreTimestamp int64 // Unix ms, 0 before any restore
}

// Metrics returns the metric values of s.
func (s Stats) Metrics() Metrics {
	m := Metrics{
		NumberOfCompletedCheckpoints:  s.Counts.Completed,
		NumberOfFailedCheckpoints:     s.Counts.Failed,
		NumberOfInProgressCheckpoints: s.Counts.InProgress,
		TotalNumberOfCheckpoints:      s.Counts.Total,
	}
	if c := s.Latest.Completed; c != nil {
		m.LastCheckpointDuration, m.LastCheckpointSize = c.EndToEndDuration, c.CheckpointedSize
	}
	if r := s.Latest.Restored; r != nil {
		m.LastCheckpointRestoreTimestamp = r.RestoreTimestamp
	}
	return m
}

// HistorySize is how many snapshots Stats.History keeps (Flink's
// web.checkpoints.history default).
const HistorySize = 10

// summaryWindow bounds the completed snapshots the summary is computed
// over, so a long-running job's statistics stay small.
const summaryWindow = 1000

// statsTracker is the coordinator's statistics; owned by its goroutine.
type statsTracker struct {
	counts  Counts
	latest  Latest
	history []*CheckpointStats
	samples [4][]int64 // state size, checkpointed size, end to end, alignment
}

func (t *statsTracker) started(s *CheckpointStats) {
	t.counts.InProgress++
	t.counts.Total++
	t.history = append([]*CheckpointStats{s}, t.history...)
	if len(t.history) > HistorySize {
		t.history = t.history[:HistorySize]
	}
}

func (t *statsTracker) completed(s *CheckpointStats) {
	t.counts.InProgress--
	t.counts.Completed++
	s.Status = StatusCompleted
	if s.IsSavepoint {
		t.latest.Savepoint = s
	} else {
		t.latest.Completed = s
	}
	for i, v := range []int64{s.StateSize, s.CheckpointedSize, s.EndToEndDuration, s.AlignmentDuration} {
		t.samples[i] = append(t.samples[i], v)
		if len(t.samples[i]) > summaryWindow {
			t.samples[i] = t.samples[i][1:]
		}
	}
}

func (t *statsTracker) failed(s *CheckpointStats, at int64, msg string) {
	t.counts.InProgress--
	t.counts.Failed++
	s.Status, s.FailureTimestamp, s.FailureMessage = StatusFailed, at, msg
	t.latest.Failed = s
}

func (t *statsTracker) restored(r *RestoredStats) {
	t.counts.Restored++
	t.latest.Restored = r
}

// snapshot copies the statistics for a caller outside the goroutine.
func (t *statsTracker) snapshot() Stats {
	cp := func(s *CheckpointStats) *CheckpointStats {
		if s == nil {
			return nil
		}
		c := *s
		return &c
	}
	s := Stats{Counts: t.counts, History: make([]*CheckpointStats, len(t.history))}
	for i, h := range t.history {
		s.History[i] = cp(h)
	}
	s.Latest.Completed, s.Latest.Savepoint, s.Latest.Failed = cp(t.latest.Completed), cp(t.latest.Savepoint), cp(t.latest.Failed)
	if r := t.latest.Restored; r != nil {
		c := *r
		s.Latest.Restored = &c
	}
	s.Summary = Summary{
		StateSize: quantiles(t.samples[0]), CheckpointedSize: quantiles(t.samples[1]),
		EndToEndDuration: quantiles(t.samples[2]), AlignmentDuration: quantiles(t.samples[3]),
	}
	return s
}

func quantiles(v []int64) Quantiles {
	if len(v) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += float64(x)
	}
	return Quantiles{
		Min: s[0], Max: s[len(s)-1], Avg: math.Round(sum / float64(len(s))),
		P50: quantile(s, 0.5), P90: quantile(s, 0.9), P95: quantile(s, 0.95), P99: quantile(s, 0.99), P999: quantile(s, 0.999),
	}
}

// quantile interpolates linearly between the closest ranks of sorted s.
func quantile(s []int64, q float64) float64 {
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return float64(s[len(s)-1])
	}
	return float64(s[lo]) + (h-float64(lo))*float64(s[lo+1]-s[lo])
}
