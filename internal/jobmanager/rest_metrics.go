package jobmanager

import (
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// Flink's metric endpoints: without ?get= they list the metric ids there
// are; with ?get=a,b they answer those metrics' current values (ids that
// do not exist are left out, as Flink does). Names are Flink's metric names.

// answerMetrics writes the metrics of values that the request's ?get= asks for.
func answerMetrics(w http.ResponseWriter, r *http.Request, values map[string]float64) {
	out := []restapi.Metric{}
	get := r.URL.Query().Get("get")
	if get == "" {
		for _, id := range sortedKeys(values) {
			out = append(out, restapi.Metric{ID: id})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	for _, id := range strings.Split(get, ",") {
		id = strings.TrimSpace(id)
		if v, ok := values[id]; ok {
			out = append(out, restapi.Metric{ID: id, Value: formatMetric(v)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// formatMetric writes a value as Flink does: integers without a fraction.
func formatMetric(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// subtaskMetrics are one subtask's metrics with Flink's names. Call with jm.mu held.
func subtaskMetrics(t *task) map[string]float64 {
	m, rt := t.metrics, t.rates()
	out := map[string]float64{
		"numRecordsIn": float64(m.readRecords), "numRecordsOut": float64(m.writeRecords),
		"numBytesIn": float64(m.readBytes), "numBytesOut": float64(m.writeBytes),
		"numRecordsInPerSecond": rt.recordsIn, "numRecordsOutPerSecond": rt.recordsOut,
		"numBytesInPerSecond": rt.bytesIn, "numBytesOutPerSecond": rt.bytesOut,
		"backPressuredTimeMsPerSecond": rt.backPressured * 1000, "idleTimeMsPerSecond": rt.idle * 1000,
		"busyTimeMsPerSecond":            rt.busy * 1000,
		"accumulatedBackPressuredTimeMs": float64(m.backPressuredMS), "accumulatedIdleTimeMs": float64(m.idleMS),
		"numLateRecordsDropped":   float64(m.lateDropped),
		"checkpointAlignmentTime": float64(m.alignmentNS),
	}
	if m.hasInWM {
		out["currentInputWatermark"] = float64(m.inWM)
	}
	if m.hasOutWM {
		out["currentOutputWatermark"] = float64(m.outWM)
	}
	return out
}

// jobMetrics is GET /jobs/{id}/metrics.
func (rs *restServer) jobMetrics(w http.ResponseWriter, r *http.Request) {
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	now := time.Now()
	values := map[string]float64{"numRestarts": float64(j.restarts), "fullRestarts": float64(j.restarts)}
	uptime, downtime := 0.0, 0.0
	if j.state == Running {
		uptime = float64(now.Sub(j.timestamps[Running]).Milliseconds())
	}
	if j.state == Failing || j.state == Restarting {
		downtime = float64(now.Sub(j.modified).Milliseconds())
	}
	values["uptime"], values["downtime"] = uptime, downtime
	var coordStats func() map[string]float64
	if j.ckpt != nil && j.ckpt.coord != nil {
		coord := j.ckpt.coord
		coordStats = func() map[string]float64 {
			mt := coord.Stats().Metrics()
			return map[string]float64{
				"lastCheckpointDuration": float64(mt.LastCheckpointDuration), "lastCheckpointSize": float64(mt.LastCheckpointSize),
				"numberOfCompletedCheckpoints": float64(mt.NumberOfCompletedCheckpoints), "numberOfFailedCheckpoints": float64(mt.NumberOfFailedCheckpoints),
				"numberOfInProgressCheckpoints": float64(mt.NumberOfInProgressCheckpoints), "totalNumberOfCheckpoints": float64(mt.TotalNumberOfCheckpoints),
				"lastCheckpointRestoreTimestamp": float64(mt.LastCheckpointRestoreTimestamp),
			}
		}
	}
	rs.jm.mu.Unlock()
	if coordStats != nil {
		// Outside jm.mu: the coordinator answers on its own goroutine.
		for k, v := range coordStats() {
			values[k] = v
		}
	}
	answerMetrics(w, r, values)
}

// vertexMetrics is GET /jobs/{id}/vertices/{vid}/metrics: each subtask's
// metrics as "<subtask>.<name>", as Flink names them.
func (rs *restServer) vertexMetrics(w http.ResponseWriter, r *http.Request) {
	j, v := rs.lockedVertex(w, r)
	if j == nil {
		return
	}
	values := map[string]float64{}
	for _, t := range vertexTasks(j, v.ID) {
		for k, x := range subtaskMetrics(t) {
			values[fmt.Sprintf("%d.%s", t.subtask, k)] = x
		}
	}
	rs.jm.mu.Unlock()
	answerMetrics(w, r, values)
}

// aggregations are Flink's aggregation modes of subtasks/metrics.
var aggregations = []string{"min", "max", "avg", "sum", "skew"}

// subtasksMetrics is GET /jobs/{id}/vertices/{vid}/subtasks/metrics: each
// metric aggregated over the subtasks ?subtasks= selects (all without it),
// with the aggregations ?agg= names (all without it).
func (rs *restServer) subtasksMetrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aggs := aggregations
	if s := q.Get("agg"); s != "" {
		aggs = nil
		for _, a := range strings.Split(s, ",") {
			a = strings.ToLower(strings.TrimSpace(a))
			if !slices.Contains(aggregations, a) {
				writeError(w, http.StatusBadRequest, "agg=%q: want a comma list of %s", s, strings.Join(aggregations, ", "))
				return
			}
			aggs = append(aggs, a)
		}
	}
	var want func(int) bool
	if s := q.Get("subtasks"); s != "" {
		f, err := parseRanges(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "subtasks=%q: %v (want e.g. 0,2,4-6)", s, err)
			return
		}
		want = f
	}
	j, v := rs.lockedVertex(w, r)
	if j == nil {
		return
	}
	per := map[string][]float64{}
	for _, t := range vertexTasks(j, v.ID) {
		if want != nil && !want(t.subtask) {
			continue
		}
		for k, x := range subtaskMetrics(t) {
			per[k] = append(per[k], x)
		}
	}
	rs.jm.mu.Unlock()
	ids := sortedKeys(per)
	if get := q.Get("get"); get != "" {
		ids = nil
		for _, id := range strings.Split(get, ",") {
			if id = strings.TrimSpace(id); per[id] != nil {
				ids = append(ids, id)
			}
		}
	} else {
		// The list of metrics, as without ?get= elsewhere.
		out := []restapi.AggregatedMetric{}
		for _, id := range ids {
			out = append(out, restapi.AggregatedMetric{ID: id})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	out := []restapi.AggregatedMetric{}
	for _, id := range ids {
		out = append(out, aggregate(id, per[id], aggs))
	}
	writeJSON(w, http.StatusOK, out)
}

// aggregate computes the aggregations of xs. skew is Flink's: the
// relative distance of the largest value from the average, in percent.
func aggregate(id string, xs []float64, aggs []string) restapi.AggregatedMetric {
	lo, hi, sum := xs[0], xs[0], 0.0
	for _, x := range xs {
		lo, hi, sum = math.Min(lo, x), math.Max(hi, x), sum+x
	}
	avg := sum / float64(len(xs))
	skew := 0.0
	if avg != 0 {
		skew = (hi - avg) / avg * 100
	}
	m := restapi.AggregatedMetric{ID: id}
	for _, a := range aggs {
		switch a {
		case "min":
			m.Min = &lo
		case "max":
			m.Max = &hi
		case "avg":
			m.Avg = &avg
		case "sum":
			m.Sum = &sum
		case "skew":
			m.Skew = &skew
		}
	}
	return m
}

// parseRanges parses Flink's subtask ranges: "1,3,5-9".
func parseRanges(s string) (func(int) bool, error) {
	type span struct{ lo, hi int }
	var spans []span
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a subtask index", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a range of subtask indexes", part)
			}
		}
		spans = append(spans, span{a, b})
	}
	return func(i int) bool {
		for _, sp := range spans {
			if i >= sp.lo && i <= sp.hi {
				return true
			}
		}
		return false
	}, nil
}

// processMetrics are this process's metrics under Flink's JVM metric names
// (Status.JVM.*), from the Go runtime.
func processMetrics(start time.Time) map[string]float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	samples := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(samples)
	cpu := 0.0
	if samples[0].Value.Kind() == metrics.KindFloat64 {
		cpu = samples[0].Value.Float64()
	}
	return map[string]float64{
		"Status.JVM.Memory.Heap.Used":          float64(ms.HeapAlloc),
		"Status.JVM.Memory.Heap.Committed":     float64(ms.HeapSys),
		"Status.JVM.Memory.Heap.Max":           float64(ms.HeapSys),
		"Status.JVM.Memory.NonHeap.Used":       float64(ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.OtherSys),
		"Status.JVM.Memory.NonHeap.Committed":  float64(ms.Sys - ms.HeapSys),
		"Status.JVM.GarbageCollector.Go.Count": float64(ms.NumGC),
		"Status.JVM.GarbageCollector.Go.Time":  float64(ms.PauseTotalNs / 1e6),
		"Status.JVM.Threads.Count":             float64(runtime.NumGoroutine()),
		"Status.JVM.CPU.Time":                  cpu * 1e9,
		"uptime":                               float64(time.Since(start).Milliseconds()),
	}
}

// jmMetricsREST is GET /jobmanager/metrics: the JobManager process and the
// cluster's counts (Flink's jobmanager metrics).
func (rs *restServer) jmMetricsREST(w http.ResponseWriter, r *http.Request) {
	values := processMetrics(rs.jm.started)
	jm := rs.jm
	jm.mu.Lock()
	total, free, running := 0, 0, 0
	for _, tm := range jm.tms {
		total += tm.slots
		free += tm.free
	}
	for _, j := range jm.jobs {
		if j.state == Running {
			running++
		}
	}
	values["numRegisteredTaskManagers"] = float64(len(jm.tms))
	values["numRunningJobs"] = float64(running)
	values["taskSlotsTotal"] = float64(total)
	values["taskSlotsAvailable"] = float64(free)
	jm.mu.Unlock()
	answerMetrics(w, r, values)
}
