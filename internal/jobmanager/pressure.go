package jobmanager

import (
	"time"
)

// pressureSample is one heartbeat's cumulative counters of a task.
type pressureSample struct {
	at                        time.Time
	backPressuredMS, idleMS   int64
	readRecords, writeRecords int64
	readBytes, writeBytes     int64
}

// pressureWindow is how far back the ratios and rates of a task look: ten
// seconds, and at least three heartbeats (heartbeat.interval) so that a
// ratio always spans more than one report.
func (jm *JobManager) pressureWindow() time.Duration {
	return max(10*time.Second, 3*jm.hbInterval)
}

// addSample records the task's counters as of now, dropping the samples
// older than window (keeping at least one before the newest).
func (t *task) addSample(now time.Time, m taskMetrics, window time.Duration) {
	t.samples = append(t.samples, pressureSample{at: now, backPressuredMS: m.backPressuredMS, idleMS: m.idleMS,
		readRecords: m.readRecords, writeRecords: m.writeRecords, readBytes: m.readBytes, writeBytes: m.writeBytes})
	drop := 0
	for drop < len(t.samples)-2 && now.Sub(t.samples[drop+1].at) >= window {
		drop++
	}
	t.samples = append(t.samples[:0], t.samples[drop:]...)
}

// taskRates are a task's shares of time and per-second rates over the
// sampling window: what its data plane did lately, not since it started.
type taskRates struct {
	// sampled: the task reported twice, so the figures below mean something.
	sampled                                  bool
	backPressured, idle, busy                float64 // ratios of wall time, 0..1
	recordsIn, recordsOut, bytesIn, bytesOut float64 // per second
	end                                      time.Time
}

// rates computes a task's taskRates from its first and last samples. A task
// that is not running has none: nothing of it is back-pressured now.
func (t *task) rates() taskRates {
	if len(t.samples) < 2 || t.state != TaskRunning {
		return taskRates{}
	}
	a, b := t.samples[0], t.samples[len(t.samples)-1]
	ms := float64(b.at.Sub(a.at).Milliseconds())
	if ms <= 0 {
		return taskRates{}
	}
	r := taskRates{sampled: true, end: b.at}
	r.backPressured = clamp01(float64(b.backPressuredMS-a.backPressuredMS) / ms)
	r.idle = clamp01(float64(b.idleMS-a.idleMS) / ms)
	r.busy = clamp01(1 - r.backPressured - r.idle)
	sec := ms / 1000
	r.recordsIn = float64(b.readRecords-a.readRecords) / sec
	r.recordsOut = float64(b.writeRecords-a.writeRecords) / sec
	r.bytesIn = float64(b.readBytes-a.readBytes) / sec
	r.bytesOut = float64(b.writeBytes-a.writeBytes) / sec
	return r
}

func clamp01(v float64) float64 {
	return min(max(v, 0), 1)
}
