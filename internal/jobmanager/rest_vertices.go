package jobmanager

import (
	"net/http"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/restapi"
)

// Job vertex endpoints, with Flink's paths and field names: the dataflow
// graph, one vertex with its subtasks, and its back-pressure.

// jobType is STREAMING, or BATCH for a job whose sources all end.
func jobType(p *dataflow.Plan) string {
	if p.Bounded {
		return "BATCH"
	}
	return "STREAMING"
}

// shipStrategy is an edge's partitioning in Flink's words.
func shipStrategy(partitioning string) string {
	return strings.ToUpper(partitioning)
}

// jobPlan is the dataflow graph of j: its vertices, each with the edges
// into it. Call with jm.mu held (the plan itself never changes).
func jobPlan(j *job) restapi.Plan {
	p := restapi.Plan{JID: j.id, Name: j.name, Type: jobType(j.plan), Nodes: []restapi.PlanNode{}}
	for _, v := range j.plan.Vertices {
		n := restapi.PlanNode{
			ID: vertexID(j.id, v.ID), Parallelism: v.Parallelism, Operator: v.Name, OperatorStrategy: "",
			Description: v.Name, OptimizerProperties: map[string]any{}, Operators: v.Operators,
		}
		for i, eid := range v.InEdges {
			e := j.plan.Edges[eid]
			in := restapi.PlanInput{Num: i, ID: vertexID(j.id, e.Source), ShipStrategy: shipStrategy(e.Partitioning),
				Exchange: "pipelined_bounded", Key: e.Key}
			if e.SideOf != "" {
				in.SideOutput = e.SideOf + "." + e.Tag
			}
			n.Inputs = append(n.Inputs, in)
		}
		p.Nodes = append(p.Nodes, n)
	}
	return p
}

// jobPlanHandler is GET /jobs/{id}/plan.
func (rs *restServer) jobPlan(w http.ResponseWriter, r *http.Request) {
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	p := restapi.JobPlan{Plan: jobPlan(j)}
	rs.jm.mu.Unlock()
	writeJSON(w, http.StatusOK, p)
}

// lockedVertex is lockedJob for a path that also names a vertex ({vid}):
// it answers 404 for an unknown job or vertex.
func (rs *restServer) lockedVertex(w http.ResponseWriter, r *http.Request) (*job, *dataflow.Vertex) {
	j := rs.lockedJob(w, r)
	if j == nil {
		return nil, nil
	}
	vi, ok := vertexIndex(j, r.PathValue("vid"))
	if !ok {
		rs.jm.mu.Unlock()
		writeError(w, http.StatusNotFound, "job %s has no vertex %s: the vertex ids are the \"id\" fields of GET /jobs/%s", j.id, r.PathValue("vid"), j.id)
		return nil, nil
	}
	return j, j.plan.Vertices[vi]
}

// vertexTasks are the tasks of vertex v of j, by subtask. Call with jm.mu held.
func vertexTasks(j *job, v int) []*task {
	var out []*task
	for _, t := range j.sortedTasks() {
		if t.vertex == v {
			out = append(out, t)
		}
	}
	return out
}

// io is a task's (or a vertex's summed) counters as Flink's IOMetricsInfo.
// complete: the job ended, so the counts are final.
func (m taskMetrics) io(complete bool) restapi.IOMetrics {
	return restapi.IOMetrics{
		ReadBytes: m.readBytes, ReadBytesComplete: complete, WriteBytes: m.writeBytes, WriteBytesComplete: complete,
		ReadRecords: m.readRecords, ReadRecordsComplete: complete, WriteRecords: m.writeRecords, WriteRecordsComplete: complete,
		AccumulatedBackpressured: m.backPressuredMS, AccumulatedIdle: m.idleMS, NumLateRecordsDropped: m.lateDropped,
	}
}

// vertexDetails is GET /jobs/{id}/vertices/{vid}.
func (rs *restServer) vertexDetails(w http.ResponseWriter, r *http.Request) {
	j, v := rs.lockedVertex(w, r)
	if j == nil {
		return
	}
	now := time.Now()
	d := restapi.VertexDetails{
		ID: vertexID(j.id, v.ID), Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: j.plan.MaxParallelism,
		Now: now.UnixMilli(), Subtasks: []restapi.SubtaskDetails{},
		Aggregated: restapi.AggregatedTaskDetails{Metrics: map[string]map[string]int64{}, StatusDuration: map[string]map[string]int64{}},
	}
	complete := j.state.Terminal()
	agg := map[string][]int64{}
	for _, t := range vertexTasks(j, v.ID) {
		endpoint := ""
		if tm, ok := rs.jm.tms[t.tm]; ok {
			endpoint = tm.dataAddr
		}
		io := t.metrics.io(complete)
		busy := durationMS(t.start, t.end) - io.AccumulatedBackpressured - io.AccumulatedIdle
		if t.start.IsZero() || busy < 0 {
			busy = 0
		}
		io.AccumulatedBusy = float64(busy)
		d.Subtasks = append(d.Subtasks, restapi.SubtaskDetails{
			Subtask: t.subtask, Status: t.state, Attempt: j.attempt, Endpoint: endpoint,
			StartTime: ms(t.start), StartTimeOld: ms(t.start), EndTime: ms(t.end), Duration: durationMS(t.start, t.end),
			Metrics: io, TaskManagerID: t.tm, StatusDuration: map[string]int64{},
			OtherConcurrentAttempts: []restapi.SubtaskDetails{},
		})
		for k, n := range map[string]int64{
			"read-bytes": io.ReadBytes, "write-bytes": io.WriteBytes, "read-records": io.ReadRecords, "write-records": io.WriteRecords,
			"accumulated-backpressured-time": io.AccumulatedBackpressured, "accumulated-idle-time": io.AccumulatedIdle,
			"accumulated-busy-time": busy,
		} {
			agg[k] = append(agg[k], n)
		}
	}
	rs.jm.mu.Unlock()
	for k, ns := range agg {
		d.Aggregated.Metrics[k] = aggregateInts(ns)
	}
	writeJSON(w, http.StatusOK, d)
}

// aggregateInts is Flink's min, max, avg and sum of a metric over subtasks.
func aggregateInts(ns []int64) map[string]int64 {
	if len(ns) == 0 {
		return map[string]int64{}
	}
	lo, hi, sum := ns[0], ns[0], int64(0)
	for _, n := range ns {
		lo, hi, sum = min(lo, n), max(hi, n), sum+n
	}
	return map[string]int64{"min": lo, "max": hi, "avg": sum / int64(len(ns)), "sum": sum}
}

// vertexBackPressure is GET /jobs/{id}/vertices/{vid}/backpressure: per
// subtask, the share of the last sampling window its output spent waiting
// for credit from downstream (the data plane's own measure, the writers'
// blocked time), with Flink's levels. The vertex's level is its worst
// subtask's. Status is "deprecated" until every running subtask has
// reported twice, as Flink says of stale statistics.
func (rs *restServer) vertexBackPressure(w http.ResponseWriter, r *http.Request) {
	j, v := rs.lockedVertex(w, r)
	if j == nil {
		return
	}
	out := restapi.VertexBackPressure{Status: restapi.BackPressureStatusOK, Subtasks: []restapi.SubtaskBackPressure{}}
	worst := 0.0
	var end time.Time
	for _, t := range vertexTasks(j, v.ID) {
		rt := t.rates()
		if !rt.sampled && t.state == TaskRunning {
			out.Status = restapi.BackPressureStatusDeprecated
		}
		if rt.end.After(end) {
			end = rt.end
		}
		level := restapi.BackPressureLevel(rt.backPressured)
		out.Subtasks = append(out.Subtasks, restapi.SubtaskBackPressure{
			Subtask: t.subtask, AttemptNumber: j.attempt, BackpressureLevel: level, BackpressureLevelOld: level,
			Ratio: rt.backPressured, IdleRatio: rt.idle, BusyRatio: rt.busy,
			OtherConcurrentAttempts: []restapi.SubtaskBackPressure{},
		})
		worst = max(worst, rt.backPressured)
	}
	rs.jm.mu.Unlock()
	if len(out.Subtasks) == 0 {
		out.Status = restapi.BackPressureStatusDeprecated
	}
	if end.IsZero() {
		end = time.Now()
	}
	out.EndTimestamp = end.UnixMilli()
	out.BackpressureLevel = restapi.BackPressureLevel(worst)
	out.BackpressureLevelOld = out.BackpressureLevel
	writeJSON(w, http.StatusOK, out)
}
