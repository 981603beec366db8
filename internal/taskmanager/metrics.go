package taskmanager

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// job_id, not job: Prometheus attaches its own job label (the scrape
	// job) to every series and would rename ours to exported_job.
	// attempt as Flink's task_attempt_num: a restarted job's new subtask
	// may start here before the cancelled one has ended, and two series
	// with the same labels would fail the whole scrape.
	taskLabels   = []string{"job_id", "attempt", "vertex", "subtask"}
	descRecIn    = prometheus.NewDesc("sluice_task_records_in_total", "Records a subtask received over its input gate.", taskLabels, nil)
	descRecOut   = prometheus.NewDesc("sluice_task_records_out_total", "Records a subtask emitted downstream.", taskLabels, nil)
	descBytesIn  = prometheus.NewDesc("sluice_task_bytes_in_total", "Serialized bytes a subtask received.", taskLabels, nil)
	descBytesOut = prometheus.NewDesc("sluice_task_bytes_out_total", "Serialized bytes a subtask emitted.", taskLabels, nil)
	descBP       = prometheus.NewDesc("sluice_task_backpressured_seconds_total", "Time a subtask spent blocked waiting for downstream credit.", taskLabels, nil)
	// Flink's checkpointAlignmentTime: the time from a subtask's first
	// barrier of its last checkpoint to its last (0 for a source, or with
	// a single input channel).
	descAlign = prometheus.NewDesc("sluice_task_checkpointAlignmentTime", "Alignment time of a subtask's last checkpoint in nanoseconds (Flink's checkpointAlignmentTime).", taskLabels, nil)
	descLate  = prometheus.NewDesc("sluice_task_numLateRecordsDropped", "Records a subtask's window dropped as later than its allowed lateness (Flink's numLateRecordsDropped).", taskLabels, nil)
	// Flink's currentInputWatermark / currentOutputWatermark (ms since the epoch), for
	// subtasks that have one.
	descInWM  = prometheus.NewDesc("sluice_task_currentInputWatermark", "The watermark a subtask's input last advanced to, in ms since the epoch (Flink's currentInputWatermark); absent before the first.", taskLabels, nil)
	descOutWM = prometheus.NewDesc("sluice_task_currentOutputWatermark", "The watermark a subtask last sent downstream, in ms since the epoch (Flink's currentOutputWatermark); absent before the first.", taskLabels, nil)
	descSent  = prometheus.NewDesc("sluice_taskmanager_network_sent_bytes_total", "Bytes sent on data connections by this TaskManager.", nil, nil)
	descRecv  = prometheus.NewDesc("sluice_taskmanager_network_received_bytes_total", "Bytes received on data connections by this TaskManager.", nil, nil)
	descTasks = prometheus.NewDesc("sluice_taskmanager_tasks", "Subtasks running on this TaskManager.", nil, nil)
)

// tmCollector reads the TaskManager's live state at scrape time: a
// subtask's series exist while it runs and are gone from the next scrape
// after it ends, so finished jobs leave no series behind.
type tmCollector struct{ tm *TaskManager }

func (c *tmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecIn, descRecOut, descBytesIn, descBytesOut, descBP, descAlign, descInWM, descOutWM, descLate, descSent, descRecv, descTasks} {
		ch <- d
	}
}

func (c *tmCollector) Collect(ch chan<- prometheus.Metric) {
	req := c.tm.heartbeatRequest()
	for _, t := range req.Tasks {
		l := []string{t.JobId, fmt.Sprint(t.Attempt), fmt.Sprint(t.Vertex), fmt.Sprint(t.Subtask)}
		ch <- prometheus.MustNewConstMetric(descRecIn, prometheus.CounterValue, float64(t.ReadRecords), l...)
		ch <- prometheus.MustNewConstMetric(descRecOut, prometheus.CounterValue, float64(t.WriteRecords), l...)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(t.ReadBytes), l...)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(t.WriteBytes), l...)
		ch <- prometheus.MustNewConstMetric(descBP, prometheus.CounterValue, float64(t.BackPressuredMs)/1000, l...)
		ch <- prometheus.MustNewConstMetric(descAlign, prometheus.GaugeValue, float64(t.CheckpointAlignmentNs), l...)
		ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(t.NumLateRecordsDropped), l...)
		if t.HasInputWatermark {
			ch <- prometheus.MustNewConstMetric(descInWM, prometheus.GaugeValue, float64(t.CurrentInputWatermark), l...)
		}
		if t.HasOutputWatermark {
			ch <- prometheus.MustNewConstMetric(descOutWM, prometheus.GaugeValue, float64(t.CurrentOutputWatermark), l...)
		}
	}
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(req.BytesSent))
	ch <- prometheus.MustNewConstMetric(descRecv, prometheus.CounterValue, float64(req.BytesReceived))
	ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(len(req.Tasks)))
}
