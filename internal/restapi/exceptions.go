package restapi

// JobExceptions is GET /jobs/{id}/exceptions (Flink's JobExceptionsInfoWithHistory).
type JobExceptions struct {
	RootException    string           `json:"root-exception,omitempty"`
	Timestamp        int64            `json:"timestamp,omitempty"`
	AllExceptions    []ExceptionInfo  `json:"all-exceptions"`
	Truncated        bool             `json:"truncated"`
	ExceptionHistory ExceptionHistory `json:"exceptionHistory"`
}

// ExceptionHistory is the failures of a job's attempts, newest first.
type ExceptionHistory struct {
	Entries   []RootExceptionInfo `json:"entries"`
	Truncated bool                `json:"truncated"`
}

// ExceptionInfo is one task failure.
type ExceptionInfo struct {
	ExceptionName string            `json:"exceptionName"`
	Stacktrace    string            `json:"stacktrace"`
	Timestamp     int64             `json:"timestamp"`
	TaskName      string            `json:"taskName,omitempty"`
	Location      string            `json:"location,omitempty"`
	Endpoint      string            `json:"endpoint,omitempty"`
	TaskManagerID string            `json:"taskManagerId,omitempty"`
	FailureLabels map[string]string `json:"failureLabels"`
	// sluice's own: whether a peer caused it, and whether the job's
	// restarts were suppressed because of it.
	CausedByPeer  bool `json:"causedByPeer"`
	Unrecoverable bool `json:"unrecoverable"`
}

// RootExceptionInfo is the root cause of an attempt's failure and the
// failures that came with it.
type RootExceptionInfo struct {
	ExceptionInfo
	ConcurrentExceptions []ExceptionInfo `json:"concurrentExceptions"`
}
