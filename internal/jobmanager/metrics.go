package jobmanager

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/security/authn"
)

// jmMetrics exposes the cluster's state in Prometheus form at /metrics. It
// reads the JobManager's state at scrape time instead of mirroring it, so
// a series goes when what it describes goes: a job's per-vertex series when
// the job reaches a terminal state (its final counts stay in GET /jobs/{id}),
// its sluice_job_state series when the job store removes it
// (jobstore.expiration-time, jobstore.max-capacity).
//
// The network counters of each TaskManager are not here: the TaskManager
// exports them itself, and a second copy under the same name would double
// every sum over both.
type jmMetrics struct {
	jm       *JobManager
	registry *prometheus.Registry

	tms, slots, slotsFree, jobs                   *prometheus.Desc
	jobState, numRestarts                         *prometheus.Desc
	ckptDuration, ckptSize, ckptCompleted         *prometheus.Desc
	ckptFailed, ckptInProgress, ckptTotal         *prometheus.Desc
	ckptRestored, alignment                       *prometheus.Desc
	inWatermark, outWatermark                     *prometheus.Desc
	recIn, recOut, bytesIn, bytesOut, backPressed *prometheus.Desc
	krbExpiry                                     *prometheus.Desc
	tokenExpiry, tokenFailures                    *prometheus.Desc
	authFailures, authLimited, limiterEntries     *prometheus.Desc
	limiterBlocked                                *prometheus.Desc
	reloadOK, reloadTime                          *prometheus.Desc
}

func newJMMetrics(jm *JobManager) *jmMetrics {
	// job_id, not job: Prometheus attaches its own job label (the scrape
	// job) to every series and would rename ours to exported_job.
	op := []string{"job_id", "job_name", "vertex", "vertex_name"}
	jl := []string{"job_id", "job_name"}
	m := &jmMetrics{
		jm:        jm,
		registry:  prometheus.NewRegistry(),
		tms:       prometheus.NewDesc("sluice_taskmanagers", "Registered TaskManagers.", nil, nil),
		slots:     prometheus.NewDesc("sluice_slots_total", "Task slots offered by registered TaskManagers.", nil, nil),
		slotsFree: prometheus.NewDesc("sluice_slots_available", "Task slots not in use.", nil, nil),
		jobs:      prometheus.NewDesc("sluice_jobs", "Jobs by state.", []string{"state"}, nil),
		jobState:  prometheus.NewDesc("sluice_job_state", "1 for each job the JobManager knows, labelled with its current state, until the job store removes it.", []string{"job_id", "job_name", "state"}, nil),
		// Flink's metric name after the sluice_job_ prefix (docs/architecture.md, "Engine", §9).
		numRestarts: prometheus.NewDesc("sluice_job_numRestarts", "Restarts of a job since it was submitted (Flink's numRestarts), until the job store removes it.", jl, nil),
		// Flink's checkpoint metric names (docs/architecture.md, "Engine", §9), from the
		// job's checkpoint statistics (GET /jobs/{id}/checkpoints).
		ckptDuration:   prometheus.NewDesc("sluice_job_lastCheckpointDuration", "End-to-end duration of a job's latest completed checkpoint in milliseconds (Flink's lastCheckpointDuration).", jl, nil),
		ckptSize:       prometheus.NewDesc("sluice_job_lastCheckpointSize", "Checkpointed size of a job's latest completed checkpoint in bytes (Flink's lastCheckpointSize).", jl, nil),
		ckptCompleted:  prometheus.NewDesc("sluice_job_numberOfCompletedCheckpoints", "Completed checkpoints and savepoints of a job (Flink's numberOfCompletedCheckpoints).", jl, nil),
		ckptFailed:     prometheus.NewDesc("sluice_job_numberOfFailedCheckpoints", "Failed checkpoints and savepoints of a job (Flink's numberOfFailedCheckpoints).", jl, nil),
		ckptInProgress: prometheus.NewDesc("sluice_job_numberOfInProgressCheckpoints", "Checkpoints of a job in progress (Flink's numberOfInProgressCheckpoints).", jl, nil),
		ckptTotal:      prometheus.NewDesc("sluice_job_totalNumberOfCheckpoints", "Checkpoints and savepoints a job triggered (Flink's totalNumberOfCheckpoints).", jl, nil),
		ckptRestored:   prometheus.NewDesc("sluice_job_lastCheckpointRestoreTimestamp", "When a job last restored a checkpoint or savepoint, Unix time in milliseconds, 0 before any (Flink's lastCheckpointRestoreTimestamp).", jl, nil),
		alignment:      prometheus.NewDesc("sluice_operator_checkpointAlignmentTime", "Alignment time of a job vertex's last checkpoint in nanoseconds, the largest of its subtasks' (Flink's checkpointAlignmentTime).", op, nil),
		inWatermark:    prometheus.NewDesc("sluice_operator_currentInputWatermark", "The input watermark of a job vertex in ms since the epoch, the least of its subtasks' (Flink's currentInputWatermark); absent until every subtask has one.", op, nil),
		outWatermark:   prometheus.NewDesc("sluice_operator_currentOutputWatermark", "The output watermark of a job vertex in ms since the epoch, the least of its subtasks' (Flink's currentOutputWatermark); absent until every subtask has one.", op, nil),
		recIn:          prometheus.NewDesc("sluice_operator_records_in_total", "Records received by a job vertex (its chained operators) over the network.", op, nil),
		recOut:         prometheus.NewDesc("sluice_operator_records_out_total", "Records emitted by a job vertex to downstream vertices.", op, nil),
		bytesIn:        prometheus.NewDesc("sluice_operator_bytes_in_total", "Serialized bytes received by a job vertex.", op, nil),
		bytesOut:       prometheus.NewDesc("sluice_operator_bytes_out_total", "Serialized bytes emitted by a job vertex.", op, nil),
		backPressed:    prometheus.NewDesc("sluice_operator_backpressured_seconds_total", "Time a job vertex's subtasks spent blocked by back-pressure.", op, nil),
		tokenExpiry:    prometheus.NewDesc("sluice_delegation_token_expiry_timestamp_seconds", "When the earliest delegation token of a service held for a job expires (Unix time); a job whose token cannot be renewed fails before then (or keeps running, per the provider's expiry-action).", []string{"service"}, nil),
		tokenFailures:  prometheus.NewDesc("sluice_delegation_token_renewal_failures", "Consecutive failed renewals of a service's delegation tokens (the most over the jobs); 0 when the last attempts succeeded.", []string{"service"}, nil),
		krbExpiry:      prometheus.NewDesc("sluice_kerberos_tgt_expiry_timestamp_seconds", "When the JobManager's Kerberos TGT expires (Unix time): the cluster stops reaching Kerberos-secured systems then unless it is renewed.", []string{"principal", "source"}, nil),
		authFailures:   prometheus.NewDesc("sluice_rest_authentication_failures_total", "Failed REST authentications (invalid credentials) by listener.", []string{"listener"}, nil),
		authLimited:    prometheus.NewDesc("sluice_rest_authentication_failures_limited_total", "Failed REST authentications answered 429 because their client address prefix was over security.rest.authentication.failures.max.", []string{"listener"}, nil),
		limiterEntries: prometheus.NewDesc("sluice_rest_authentication_limiter_entries", "Client address prefixes the failed-authentication limiter holds a counter for, by listener.", []string{"listener"}, nil),
		limiterBlocked: prometheus.NewDesc("sluice_rest_authentication_limiter_blocked", "Client address prefixes whose failed authentications are refused now, by listener.", []string{"listener"}, nil),
		reloadOK:       prometheus.NewDesc("sluice_config_last_reload_successful", "Whether the last configuration load (start-up, then each POST /admin/reload) loaded everything (1) or not (0).", nil, nil),
		reloadTime:     prometheus.NewDesc("sluice_config_last_reload_success_timestamp_seconds", "When the configuration was last loaded completely, at start-up or by POST /admin/reload (Unix time).", nil, nil),
	}
	m.registry.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *jmMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.tms, m.slots, m.slotsFree, m.jobs, m.jobState, m.numRestarts,
		m.ckptDuration, m.ckptSize, m.ckptCompleted, m.ckptFailed, m.ckptInProgress, m.ckptTotal, m.ckptRestored, m.alignment, m.inWatermark, m.outWatermark, m.recIn, m.recOut, m.bytesIn, m.bytesOut, m.backPressed, m.krbExpiry, m.tokenExpiry, m.tokenFailures,
		m.authFailures, m.authLimited, m.limiterEntries, m.limiterBlocked, m.reloadOK, m.reloadTime} {
		ch <- d
	}
}

func (m *jmMetrics) Collect(ch chan<- prometheus.Metric) {
	jm := m.jm
	for _, st := range jm.tokens.Status() {
		ch <- prometheus.MustNewConstMetric(m.tokenExpiry, prometheus.GaugeValue, float64(st.Expires.Unix()), st.Service)
		ch <- prometheus.MustNewConstMetric(m.tokenFailures, prometheus.GaugeValue, float64(st.Failures), st.Service)
	}
	if jm.krb != nil {
		st := jm.krb.Status()
		ch <- prometheus.MustNewConstMetric(m.krbExpiry, prometheus.GaugeValue, float64(st.Expires.Unix()), st.Principal, string(st.Source))
	}
	if jm.restSec != nil {
		// Every listener, with zeros until its first failure, so a rate
		// or an alert over the series works from the start.
		stats := map[string]authn.LimiterStats{}
		for _, l := range jm.listeners {
			stats[l.Name] = authn.LimiterStats{Listener: l.Name}
		}
		for _, st := range jm.restSec.limiter.Stats() {
			stats[st.Listener] = st
		}
		for _, st := range stats {
			ch <- prometheus.MustNewConstMetric(m.authFailures, prometheus.CounterValue, float64(st.Failures), st.Listener)
			ch <- prometheus.MustNewConstMetric(m.authLimited, prometheus.CounterValue, float64(st.Limited), st.Listener)
			ch <- prometheus.MustNewConstMetric(m.limiterEntries, prometheus.GaugeValue, float64(st.Entries), st.Listener)
			ch <- prometheus.MustNewConstMetric(m.limiterBlocked, prometheus.GaugeValue, float64(st.Blocked), st.Listener)
		}
	}
	if done, ok, lastOK := jm.reloads.snapshot(); done {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.reloadOK, prometheus.GaugeValue, v)
		if !lastOK.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.reloadTime, prometheus.GaugeValue, float64(lastOK.Unix()))
		}
	}
	for _, c := range m.collectLocked(ch) {
		// Outside jm.mu: the coordinator answers Stats on its own
		// goroutine, which may itself be waiting for jm.mu.
		mt := c.coord.Stats().Metrics()
		for _, v := range []struct {
			d *prometheus.Desc
			n int64
		}{
			{m.ckptDuration, mt.LastCheckpointDuration}, {m.ckptSize, mt.LastCheckpointSize},
			{m.ckptCompleted, mt.NumberOfCompletedCheckpoints}, {m.ckptFailed, mt.NumberOfFailedCheckpoints},
			{m.ckptInProgress, mt.NumberOfInProgressCheckpoints}, {m.ckptTotal, mt.TotalNumberOfCheckpoints},
			{m.ckptRestored, mt.LastCheckpointRestoreTimestamp},
		} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, float64(v.n), c.id, c.name)
		}
	}
}

// jobCoordinator is a job's checkpoint coordinator with the labels of
// its series.
type jobCoordinator struct {
	id, name string
	coord    *checkpoint.Coordinator
}

// collectLocked sends the series read from the JobManager's state under
// jm.mu, and returns the checkpoint coordinators of the jobs it knows,
// whose statistics the caller reads after releasing the lock.
func (m *jmMetrics) collectLocked(ch chan<- prometheus.Metric) []jobCoordinator {
	jm := m.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	var coords []jobCoordinator
	total, free := 0, 0
	for _, tm := range jm.tms {
		total += tm.slots
		free += tm.free
	}
	ch <- prometheus.MustNewConstMetric(m.tms, prometheus.GaugeValue, float64(len(jm.tms)))
	ch <- prometheus.MustNewConstMetric(m.slots, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(m.slotsFree, prometheus.GaugeValue, float64(free))
	states := map[JobState]int{}
	for _, st := range []JobState{Created, Running, Finished, Cancelling, Canceled, Failing, Failed, Restarting} {
		states[st] = 0
	}
	for _, j := range jm.jobs {
		states[j.state]++
		ch <- prometheus.MustNewConstMetric(m.jobState, prometheus.GaugeValue, 1, j.id, j.name, string(j.state))
		ch <- prometheus.MustNewConstMetric(m.numRestarts, prometheus.GaugeValue, float64(j.restarts), j.id, j.name)
		if j.ckpt != nil && j.ckpt.coord != nil {
			coords = append(coords, jobCoordinator{j.id, j.name, j.ckpt.coord})
		}
		if j.state.Terminal() {
			continue
		}
		for _, v := range j.plan.Vertices {
			var t taskMetrics
			for _, tk := range j.tasks {
				if tk.vertex == v.ID {
					t.add(tk.metrics)
				}
			}
			l := []string{j.id, j.name, fmt.Sprint(v.ID), v.Name}
			ch <- prometheus.MustNewConstMetric(m.recIn, prometheus.CounterValue, float64(t.readRecords), l...)
			ch <- prometheus.MustNewConstMetric(m.recOut, prometheus.CounterValue, float64(t.writeRecords), l...)
			ch <- prometheus.MustNewConstMetric(m.bytesIn, prometheus.CounterValue, float64(t.readBytes), l...)
			ch <- prometheus.MustNewConstMetric(m.bytesOut, prometheus.CounterValue, float64(t.writeBytes), l...)
			ch <- prometheus.MustNewConstMetric(m.backPressed, prometheus.CounterValue, float64(t.backPressuredMS)/1000, l...)
			ch <- prometheus.MustNewConstMetric(m.alignment, prometheus.GaugeValue, float64(t.alignmentNS), l...)
			in, out, hasIn, hasOut := t.vertexWatermarks()
			if hasIn {
				ch <- prometheus.MustNewConstMetric(m.inWatermark, prometheus.GaugeValue, float64(in), l...)
			}
			if hasOut {
				ch <- prometheus.MustNewConstMetric(m.outWatermark, prometheus.GaugeValue, float64(out), l...)
			}
		}
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(m.jobs, prometheus.GaugeValue, float64(n), string(st))
	}
	return coords
}
