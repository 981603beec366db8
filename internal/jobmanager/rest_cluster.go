package jobmanager

import (
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/restapi"
)

// TaskManager, JobManager and job configuration endpoints, with Flink's
// paths and field names.

var buildRevision = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, at, dirty := "", "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	if dirty {
		rev += "-dirty"
	}
	if at != "" {
		rev += " @ " + at
	}
	return rev
})

// revision is the commit sluice was built from, in Flink's "abc1234 @ time"
// form ("unknown" for a build outside a repository).
func revision() string { return buildRevision() }

// port is the port of a host:port address, 0 when it has none.
func port(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// tmInfo is a TaskManager's entry of GET /taskmanagers. Call with jm.mu held.
func tmInfo(tm *taskManager, now time.Time) restapi.TaskManagerInfo {
	info := restapi.TaskManagerInfo{
		ID: tm.id, Path: tm.rpcAddr, DataPort: port(tm.dataAddr), TimeSinceLastHeartbeat: now.Sub(tm.lastBeat).Milliseconds(),
		SlotsNumber: tm.slots, FreeSlots: tm.free, DataAddress: tm.dataAddr, MetricsAddress: tm.metricsAddr,
		Hostname: tm.hostname, Registered: ms(tm.registered), BytesSent: tm.bytesSent, BytesReceived: tm.bytesRecv,
	}
	info.TotalResource.ExtendedResources, info.FreeResource.ExtendedResources = map[string]any{}, map[string]any{}
	if p := tm.process; p != nil {
		info.Hardware = restapi.Hardware{CPUCores: int(p.CpuCores), PhysicalMemory: p.PhysicalMemory, FreeMemory: p.FreeMemory}
		info.TotalResource.CPUCores = float64(p.CpuCores)
		if tm.slots > 0 {
			info.FreeResource.CPUCores = float64(p.CpuCores) * float64(tm.free) / float64(tm.slots)
		}
		info.MemoryConfiguration.TotalProcessMemory = p.HeapMax
	}
	return info
}

func (rs *restServer) taskmanagers(w http.ResponseWriter, r *http.Request) {
	jm := rs.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	now := time.Now()
	out := restapi.TaskManagers{TaskManagers: []restapi.TaskManagerInfo{}}
	for _, tm := range jm.sortedTMs() {
		out.TaskManagers = append(out.TaskManagers, tmInfo(tm, now))
	}
	writeJSON(w, http.StatusOK, out)
}

// lockedTM takes jm.mu and returns the TaskManager the path names; without
// one it answers 404, unlocks and returns nil.
func (rs *restServer) lockedTM(w http.ResponseWriter, r *http.Request) *taskManager {
	rs.jm.mu.Lock()
	tm, ok := rs.jm.tms[r.PathValue("id")]
	if !ok {
		rs.jm.mu.Unlock()
		writeError(w, http.StatusNotFound, "taskmanager %s is not registered (GET /taskmanagers lists the registered ones)", r.PathValue("id"))
		return nil
	}
	return tm
}

// taskmanagerDetails is GET /taskmanagers/{id}.
func (rs *restServer) taskmanagerDetails(w http.ResponseWriter, r *http.Request) {
	tm := rs.lockedTM(w, r)
	if tm == nil {
		return
	}
	d := restapi.TaskManagerDetails{TaskManagerInfo: tmInfo(tm, time.Now()), AllocatedSlots: []restapi.SlotInfo{},
		Metrics: restapi.TaskManagerMetrics{GarbageCollectors: []restapi.GarbageCollector{}}}
	if p := tm.process; p != nil {
		d.Metrics.HeapUsed, d.Metrics.HeapCommitted, d.Metrics.HeapMax = p.HeapUsed, p.HeapCommitted, p.HeapMax
		d.Metrics.NonHeapUsed, d.Metrics.NonHeapCommitted = p.NonHeapUsed, p.NonHeapCommitted
		d.Metrics.GarbageCollectors = append(d.Metrics.GarbageCollectors, restapi.GarbageCollector{Name: "Go", Count: p.GcCount, Time: p.GcTimeMs})
	}
	for _, j := range rs.jm.jobs {
		for g := range j.held {
			if g.tm == tm {
				d.AllocatedSlots = append(d.AllocatedSlots, restapi.SlotInfo{JobID: j.id, Resource: map[string]any{}})
			}
		}
	}
	rs.jm.mu.Unlock()
	writeJSON(w, http.StatusOK, d)
}

// taskmanagerMetrics is GET /taskmanagers/{id}/metrics, from the
// TaskManager's last heartbeat.
func (rs *restServer) taskmanagerMetrics(w http.ResponseWriter, r *http.Request) {
	tm := rs.lockedTM(w, r)
	if tm == nil {
		return
	}
	values := map[string]float64{
		"Status.Network.TotalBytesSent": float64(tm.bytesSent), "Status.Network.TotalBytesReceived": float64(tm.bytesRecv),
		"Status.TaskSlots.Total": float64(tm.slots), "Status.TaskSlots.Available": float64(tm.free),
	}
	if p := tm.process; p != nil {
		for k, v := range map[string]int64{
			"Status.JVM.Memory.Heap.Used": p.HeapUsed, "Status.JVM.Memory.Heap.Committed": p.HeapCommitted, "Status.JVM.Memory.Heap.Max": p.HeapMax,
			"Status.JVM.Memory.NonHeap.Used": p.NonHeapUsed, "Status.JVM.Memory.NonHeap.Committed": p.NonHeapCommitted,
			"Status.JVM.GarbageCollector.Go.Count": p.GcCount, "Status.JVM.GarbageCollector.Go.Time": p.GcTimeMs,
			"Status.JVM.Threads.Count": int64(p.Goroutines), "Status.JVM.CPU.Time": p.CpuTimeMs * 1e6,
			"Status.Hardware.CpuCores": int64(p.CpuCores), "Status.Hardware.PhysicalMemory": p.PhysicalMemory, "Status.Hardware.FreeMemory": p.FreeMemory,
			"uptime": p.UptimeMs,
		} {
			values[k] = float64(v)
		}
	}
	rs.jm.mu.Unlock()
	answerMetrics(w, r, values)
}

func (rs *restServer) jmConfig(w http.ResponseWriter, r *http.Request) {
	out := []restapi.ConfigEntry{}
	for _, e := range rs.jm.cfg.Entries() {
		out = append(out, restapi.ConfigEntry{Key: e.Key, Value: e.Value})
	}
	writeJSON(w, http.StatusOK, out)
}

// maskedArgs is a command line with the values of sensitive settings
// masked: -D key=value and --flag=value or --flag value where the key or
// flag names a secret (config.IsSensitive), and every --join-token.
func maskedArgs(args []string) []string {
	out := make([]string, len(args))
	maskNext := false
	for i, a := range args {
		if maskNext {
			out[i], maskNext = "******", false
			continue
		}
		out[i] = a
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "-D" || a == "--define":
			// The next argument is key=value: handled below as an argument of its own.
		case strings.HasPrefix(a, "--define="):
			if k, v, ok := strings.Cut(a[len("--define="):], "="); ok && (config.IsSensitive(k) || config.HoldsSecret(v)) {
				out[i] = "--define=" + k + "=******"
			}
		case strings.HasPrefix(a, "-D") && len(a) > 2:
			if k, v, ok := strings.Cut(a[2:], "="); ok && (config.IsSensitive(k) || config.HoldsSecret(v)) {
				out[i] = "-D" + k + "=******"
			}
		case !strings.HasPrefix(a, "-") && hasValue && (config.IsSensitive(name) || config.HoldsSecret(value)):
			out[i] = name + "=******"
		case strings.HasPrefix(a, "-") && (config.IsSensitive(name) || strings.Contains(name, "token")):
			if hasValue {
				out[i] = a[:len(a)-len(value)] + "******"
			} else {
				maskNext = true
			}
		}
	}
	return out
}

// jmEnvironment is GET /jobmanager/environment. sluice has no JVM: "jvm"
// describes the Go runtime and the process's command line (secrets
// masked), "classpath" the modules the binary was built from.
func (rs *restServer) jmEnvironment(w http.ResponseWriter, r *http.Request) {
	env := restapi.Environment{
		JVM:       restapi.JVMInfo{Version: runtime.Version(), Arch: runtime.GOOS + "/" + runtime.GOARCH, Options: maskedArgs(os.Args[1:])},
		Classpath: []string{},
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		env.Classpath = append(env.Classpath, info.Main.Path+"@"+info.Main.Version)
		for _, m := range info.Deps {
			env.Classpath = append(env.Classpath, m.Path+"@"+m.Version)
		}
	}
	writeJSON(w, http.StatusOK, env)
}

// restartStrategy describes a job's restart strategy in one line.
func restartStrategy(s RestartSettings) string {
	switch s.Strategy {
	case RestartFixedDelay:
		return "fixed-delay: " + strconv.Itoa(s.FixedAttempts) + " attempts, " + s.FixedDelay.String() + " apart"
	case RestartExponentialDelay:
		return "exponential-delay: from " + s.Exponential.InitialBackoff.String() + " up to " + s.Exponential.MaxBackoff.String()
	}
	return s.Strategy
}

// maskParams copies a job's parameters or settings with sensitive values masked: by the name
// (config.IsSensitive) and by the value (config.HoldsSecret), since a parameter of any name may
// be substituted into a connector's JAAS string or connection URL.
func maskParams(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if config.IsSensitive(k) || config.HoldsSecret(v) {
			v = "******"
		}
		out[k] = v
	}
	return out
}

// jobConfig is GET /jobs/{id}/config.
func (rs *restServer) jobConfig(w http.ResponseWriter, r *http.Request) {
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	out := restapi.JobConfig{JID: j.id, Name: j.name, ExecutionConfig: restapi.ExecutionConfig{
		ExecutionMode: "PIPELINED", RestartStrategy: restartStrategy(j.restart), JobParallelism: j.parallelism,
		UserConfig: maskParams(j.params),
	}, Settings: maskParams(j.settings)}
	rs.jm.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// applicationStatus is Flink's ApplicationStatus of a job that ended.
func applicationStatus(s JobState) string {
	switch s {
	case Finished:
		return "SUCCEEDED"
	case Failed:
		return "FAILED"
	case Canceled:
		return "CANCELED"
	}
	return "UNKNOWN"
}

// jobExecutionResult is GET /jobs/{id}/execution-result.
func (rs *restServer) jobExecutionResult(w http.ResponseWriter, r *http.Request) {
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	out := restapi.ExecutionResult{Status: restapi.QueueStatus{ID: restapi.InProgress}}
	if j.state.Terminal() {
		out.Status.ID = restapi.Completed
		res := &restapi.JobResult{ID: j.id, ApplicationStatus: applicationStatus(j.state), AccumulatorResults: map[string]any{},
			NetRuntime: durationMS(j.start, j.end)}
		if j.state == Failed && j.cause != "" {
			res.FailureCause = &restapi.SerializedThrowable{Class: "sluice.JobFailure", StackTrace: j.cause, Message: j.cause}
		}
		out.Result = res
	}
	rs.jm.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
