package restapi

// Overview is GET /overview (Flink's ClusterOverviewWithVersion, and
// sluice's own fields).
type Overview struct {
	TaskManagers   int `json:"taskmanagers"`
	SlotsTotal     int `json:"slots-total"`
	SlotsAvailable int `json:"slots-available"`
	JobsRunning    int `json:"jobs-running"`
	JobsFinished   int `json:"jobs-finished"`
	JobsCancelled  int `json:"jobs-cancelled"`
	JobsFailed     int `json:"jobs-failed"`
	// TaskManagersBlocked and SlotsFreeAndBlocked are Flink's; sluice blocks
	// no TaskManager, so they are 0.
	TaskManagersBlocked int    `json:"taskmanagers-blocked"`
	SlotsFreeAndBlocked int    `json:"slots-free-and-blocked"`
	FlinkVersion        string `json:"flink-version"`
	FlinkCommit         string `json:"flink-commit"`
	SluiceVersion       string `json:"sluice-version"`
	ClusterID           string `json:"cluster-id"`
	// Kerberos is the JobManager's Kerberos login, when it has one.
	Kerberos *KerberosStatus `json:"kerberos,omitempty"`
}

// Features are the dashboard features of GET /config.
type Features struct {
	WebSubmit  bool `json:"web-submit"`
	WebCancel  bool `json:"web-cancel"`
	WebRescale bool `json:"web-rescale"`
	WebHistory bool `json:"web-history"`
}

// DashboardConfig is GET /config (Flink's DashboardConfiguration). The
// version fields name sluice's version and the revision it was built from:
// sluice speaks Flink's REST API, it is not Flink.
type DashboardConfig struct {
	RefreshInterval int64    `json:"refresh-interval"`
	TimezoneName    string   `json:"timezone-name"`
	TimezoneOffset  int      `json:"timezone-offset"`
	FlinkVersion    string   `json:"flink-version"`
	FlinkRevision   string   `json:"flink-revision"`
	Features        Features `json:"features"`
	SluiceVersion   string   `json:"sluice-version"`
	BasePath        string   `json:"base-path"`
}

// Hardware describes a TaskManager's machine (Flink's HardwareDescription).
type Hardware struct {
	CPUCores       int   `json:"cpuCores"`
	PhysicalMemory int64 `json:"physicalMemory"`
	FreeMemory     int64 `json:"freeMemory"`
	ManagedMemory  int64 `json:"managedMemory"`
}

// TaskManagerInfo is one entry of GET /taskmanagers (Flink's TaskManagerInfo,
// and sluice's own fields).
type TaskManagerInfo struct {
	ID                     string   `json:"id"`
	Path                   string   `json:"path"`
	DataPort               int      `json:"dataPort"`
	JMXPort                int      `json:"jmxPort"`
	TimeSinceLastHeartbeat int64    `json:"timeSinceLastHeartbeat"`
	SlotsNumber            int      `json:"slotsNumber"`
	FreeSlots              int      `json:"freeSlots"`
	Hardware               Hardware `json:"hardware"`
	Blocked                bool     `json:"blocked"`
	// TotalResource and FreeResource are the TaskManager's slots as Flink's
	// resource profiles: sluice budgets no memory per slot, so only
	// cpuCores (the machine's, shared by the slots) is filled in.
	TotalResource ResourceProfile `json:"totalResource"`
	FreeResource  ResourceProfile `json:"freeResource"`
	// MemoryConfiguration is Flink's memory model, which a Go process does
	// not have: TotalProcessMemory is the Go memory limit, 0 without one.
	MemoryConfiguration MemoryConfiguration `json:"memoryConfiguration"`

	DataAddress    string `json:"dataAddress"`
	MetricsAddress string `json:"metricsAddress"`
	Hostname       string `json:"hostname"`
	Registered     int64  `json:"registered"`
	BytesSent      int64  `json:"bytesSent"`
	BytesReceived  int64  `json:"bytesReceived"`
}

// ResourceProfile is Flink's ResourceProfileInfo.
type ResourceProfile struct {
	CPUCores          float64        `json:"cpuCores"`
	TaskHeapMemory    int64          `json:"taskHeapMemory"`
	TaskOffHeapMemory int64          `json:"taskOffHeapMemory"`
	ManagedMemory     int64          `json:"managedMemory"`
	NetworkMemory     int64          `json:"networkMemory"`
	ExtendedResources map[string]any `json:"extendedResources"`
}

// MemoryConfiguration is Flink's TaskExecutorMemoryConfiguration.
type MemoryConfiguration struct {
	FrameworkHeap      int64 `json:"frameworkHeap"`
	TaskHeap           int64 `json:"taskHeap"`
	FrameworkOffHeap   int64 `json:"frameworkOffHeap"`
	TaskOffHeap        int64 `json:"taskOffHeap"`
	NetworkMemory      int64 `json:"networkMemory"`
	ManagedMemory      int64 `json:"managedMemory"`
	JVMMetaspace       int64 `json:"jvmMetaspace"`
	JVMOverhead        int64 `json:"jvmOverhead"`
	TotalFlinkMemory   int64 `json:"totalFlinkMemory"`
	TotalProcessMemory int64 `json:"totalProcessMemory"`
}

// TaskManagers is GET /taskmanagers.
type TaskManagers struct {
	TaskManagers []TaskManagerInfo `json:"taskmanagers"`
}

// TaskManagerMetrics are the memory figures of GET /taskmanagers/{id}, in
// Flink's names. A Go process has a heap and no JVM direct or mapped
// buffers, and sluice's data exchange gives each channel its own buffers
// instead of drawing them from a shuffle memory pool: those figures are 0.
type TaskManagerMetrics struct {
	HeapUsed                            int64              `json:"heapUsed"`
	HeapCommitted                       int64              `json:"heapCommitted"`
	HeapMax                             int64              `json:"heapMax"`
	NonHeapUsed                         int64              `json:"nonHeapUsed"`
	NonHeapCommitted                    int64              `json:"nonHeapCommitted"`
	NonHeapMax                          int64              `json:"nonHeapMax"`
	DirectCount                         int64              `json:"directCount"`
	DirectUsed                          int64              `json:"directUsed"`
	DirectMax                           int64              `json:"directMax"`
	MappedCount                         int64              `json:"mappedCount"`
	MappedUsed                          int64              `json:"mappedUsed"`
	MappedMax                           int64              `json:"mappedMax"`
	NettyShuffleMemorySegmentsAvailable int64              `json:"nettyShuffleMemorySegmentsAvailable"`
	NettyShuffleMemorySegmentsUsed      int64              `json:"nettyShuffleMemorySegmentsUsed"`
	NettyShuffleMemorySegmentsTotal     int64              `json:"nettyShuffleMemorySegmentsTotal"`
	NettyShuffleMemoryAvailable         int64              `json:"nettyShuffleMemoryAvailable"`
	NettyShuffleMemoryUsed              int64              `json:"nettyShuffleMemoryUsed"`
	NettyShuffleMemoryTotal             int64              `json:"nettyShuffleMemoryTotal"`
	GarbageCollectors                   []GarbageCollector `json:"garbageCollectors"`
}

// GarbageCollector is one collector of TaskManagerMetrics.
type GarbageCollector struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
	Time  int64  `json:"time"` // ms
}

// SlotInfo is one slot a job holds on a TaskManager.
type SlotInfo struct {
	JobID    string         `json:"jobId"`
	Resource map[string]any `json:"resource"`
}

// TaskManagerDetails is GET /taskmanagers/{id} (Flink's TaskManagerDetailsInfo).
type TaskManagerDetails struct {
	TaskManagerInfo
	Metrics        TaskManagerMetrics `json:"metrics"`
	AllocatedSlots []SlotInfo         `json:"allocatedSlots"`
}

// LogInfo is one log file of a process.
type LogInfo struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime"` // ms since the epoch
}

// LogList is GET /jobmanager/logs and GET /taskmanagers/{id}/logs; each
// file is GET .../logs/{filename}, as text.
type LogList struct {
	Logs []LogInfo `json:"logs"`
}

// JVMInfo is the "jvm" of GET /jobmanager/environment. sluice runs no JVM:
// version is the Go runtime's, arch GOOS/GOARCH, options the process's
// command line with sensitive values masked.
type JVMInfo struct {
	Version string   `json:"version"`
	Arch    string   `json:"arch"`
	Options []string `json:"options"`
}

// Environment is GET /jobmanager/environment (Flink's EnvironmentInfo).
// Classpath lists the modules the binary was built with.
type Environment struct {
	JVM       JVMInfo  `json:"jvm"`
	Classpath []string `json:"classpath"`
}

// ConfigEntry is one entry of GET /jobmanager/config.
type ConfigEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Identity is GET /whoami: who the JobManager takes the caller for.
type Identity struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
	// Method is how the caller authenticated: token, x509, kerberos...
	Method string `json:"method"`
	// Listener names the REST listener that authenticated the caller.
	Listener string `json:"listener,omitempty"`
}

// KerberosStatus is the "kerberos" of GET /overview: when the cluster's
// Kerberos credentials stop working.
type KerberosStatus struct {
	Principal        string `json:"principal"`
	Source           string `json:"source"`
	Expires          int64  `json:"expires"`
	ExpiresInSeconds int64  `json:"expires-in-seconds"`
	Relogins         int64  `json:"relogins"`
	RenewTill        int64  `json:"renew-till,omitempty"`
}
