// Package checkpointbench measures what checkpoints cost a running job and
// what recovery takes, on an in-process cluster (internal/minicluster: a
// JobManager and TaskManagers over real loopback sockets), reading every
// figure from the cluster's REST API as a user would: job metrics from GET
// /jobs/{id}, checkpoint statistics from GET /jobs/{id}/checkpoints.
// `sluice bench checkpoint` prints its Result.
package checkpointbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/minicluster"
)

// Options configure a run. Zero values take the defaults of `sluice bench
// checkpoint` (DefaultOptions).
type Options struct {
	// Duration is the measuring time of each throughput run.
	Duration time.Duration
	// Rounds is how many baseline and checkpointing runs alternate; the
	// reported rates are the medians.
	Rounds int
	// Parallelism of every job.
	Parallelism int
	// ThroughputKeys is the number of distinct keys of the throughput and
	// recovery jobs.
	ThroughputKeys int64
	// StateKeys is the number of keys in state for the checkpoint size and
	// duration runs (1M in the performance budget).
	StateKeys int64
	// Interval is the checkpoint interval of the checkpointing runs.
	Interval time.Duration
	Logger   *slog.Logger
}

// DefaultOptions are the defaults of `sluice bench checkpoint`: a full run
// takes about 2-3 minutes on 2 cores.
func DefaultOptions() Options {
	return Options{Duration: 4 * time.Second, Rounds: 5, Parallelism: 2, ThroughputKeys: 10_000, StateKeys: 1_000_000, Interval: time.Second}
}

// Result is the one JSON object `sluice bench checkpoint` prints.
type Result struct {
	Parallelism    int     `json:"parallelism"`
	DurationS      float64 `json:"duration_s_each"`
	Rounds         int     `json:"rounds"`
	ThroughputKeys int64   `json:"throughput_keys"`
	IntervalMS     int64   `json:"checkpoint_interval_ms"`

	// Records/s through the keyed sum (records read by the vertex that
	// holds it), medians over the rounds, and each round's figure.
	RecordsPerSecBaseline      float64 `json:"records_per_sec_baseline"`
	RecordsPerSecCheckpointing float64 `json:"records_per_sec_checkpointing"`
	Ratio                      float64 `json:"ratio"`
	// RatioOfRounds is the median of each round's ratio (its two runs
	// ran back to back): less sensitive to the machine's load drifting.
	RatioOfRounds     float64   `json:"ratio_median_of_rounds"`
	BaselineRuns      []float64 `json:"baseline_runs"`
	CheckpointingRuns []float64 `json:"checkpointing_runs"`
	// CheckpointsCompleted counts the checkpoints the checkpointing runs
	// completed (a run without any would not measure anything).
	CheckpointsCompleted int64 `json:"checkpoints_completed"`
	// AlignmentP99MS is the largest, over the checkpointing runs, of the
	// p99 of alignment_duration in GET /jobs/{id}/checkpoints.
	AlignmentP99MS float64 `json:"alignment_p99_ms"`

	// StateKeys keys in state: the first checkpoint taken after every key
	// is in state, and the next two, each after 1% of the keys changed.
	StateKeys int64 `json:"state_keys"`
	// StateRate is the generator's pace in those runs (records/s).
	StateRate int64 `json:"state_generator_rate"`
	// StateIntervalMS is the checkpoint interval of each backend's run.
	StateIntervalMS map[string]int64 `json:"state_checkpoint_interval_ms"`
	// CheckpointDurationMS and CheckpointSizeBytes by backend: hashmap
	// and pebble_full the first checkpoint, pebble_incremental the second
	// (what an incremental checkpoint costs in the steady state).
	CheckpointDurationMS map[string]int64 `json:"checkpoint_duration_ms"`
	CheckpointSizeBytes  map[string]int64 `json:"checkpoint_size_bytes"`
	// PebbleIncrementalFirstSizeBytes and ...SecondSizeBytes: the
	// incremental checkpoint's base and the one after it.
	PebbleIncrementalFirstSizeBytes  int64 `json:"pebble_incremental_first_size_bytes"`
	PebbleIncrementalSecondSizeBytes int64 `json:"pebble_incremental_second_size_bytes"`
	// PebbleIncrementalThirdSizeBytes: after pebble's compaction of the
	// fill (see stateSizes), what changing 1% of the keys costs.
	PebbleIncrementalThirdSizeBytes int64                      `json:"pebble_incremental_third_size_bytes"`
	StateCheckpoints                map[string]StateBackendRun `json:"state_checkpoints"`

	// RecoveryMS is from the JobManager's detection of the failure (the
	// job's FAILING timestamp) to the first record the keyed sum of the
	// new attempt read, as the bench saw it in GET /jobs/{id} (heartbeat
	// resolution: RecoveryResolutionMS).
	RecoveryMS int64 `json:"recovery_ms"`
	// RecoveryDetectionMS is from the kill to the FAILING timestamp.
	RecoveryDetectionMS  int64   `json:"recovery_detection_ms"`
	RecoveryResolutionMS int64   `json:"recovery_resolution_ms"`
	RecoveryRestartDelay int64   `json:"recovery_restart_delay_ms"`
	RecoveryRestoredFrom int64   `json:"recovery_restored_checkpoint"`
	RecoveryMethod       string  `json:"recovery_method"`
	TotalSeconds         float64 `json:"total_seconds"`
	// LoadAverage is the machine's 1-minute load average before and after
	// the run (Linux; absent elsewhere) beside NumCPU: the throughput
	// figures of a run on a busy machine say more about the machine.
	LoadAverage []float64 `json:"load_average_1m,omitempty"`
	NumCPU      int       `json:"num_cpu"`
}

// StateBackendRun is one backend's first three checkpoints with every key
// in state.
type StateBackendRun struct {
	First  CheckpointFigures `json:"first"`
	Second CheckpointFigures `json:"second"`
	Third  CheckpointFigures `json:"third"`
}

// CheckpointFigures are one completed checkpoint's statistics.
type CheckpointFigures struct {
	ID               int64 `json:"id"`
	DurationMS       int64 `json:"duration_ms"`
	CheckpointedSize int64 `json:"checkpointed_size_bytes"`
	StateSize        int64 `json:"state_size_bytes"`
}

// heartbeat is the cluster's heartbeat.interval: task metrics reach the
// JobManager at this pace, which bounds the resolution of what the bench
// reads from GET /jobs/{id}.
const heartbeat = 50 * time.Millisecond

// Run runs the benchmark: it starts a cluster of three TaskManagers (one
// spare, for the recovery run), measures, and stops it.
func Run(ctx context.Context, o Options) (*Result, error) {
	d := DefaultOptions()
	if o.Duration <= 0 {
		o.Duration = d.Duration
	}
	if o.Rounds <= 0 {
		o.Rounds = d.Rounds
	}
	if o.Parallelism <= 0 {
		o.Parallelism = d.Parallelism
	}
	if o.ThroughputKeys <= 0 {
		o.ThroughputKeys = d.ThroughputKeys
	}
	if o.StateKeys <= 0 {
		o.StateKeys = d.StateKeys
	}
	if o.Interval <= 0 {
		o.Interval = d.Interval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	began := time.Now()
	load := loadAverage()
	cfg := config.New()
	for k, v := range map[string]string{
		"heartbeat.interval": heartbeat.String(),
		// Only for a TaskManager that vanished without its connections
		// closing; the kill below closes them.
		"heartbeat.timeout": "5 s",
	} {
		if err := cfg.Set(k, v); err != nil {
			return nil, err
		}
	}
	c, err := minicluster.Start(ctx, minicluster.Options{
		Config: cfg, Logger: o.Logger, TaskManagers: 3, Slots: 2 * o.Parallelism, Stdout: io.Discard,
		DefaultCheckpointsDir: true,
	})
	if err != nil {
		return nil, fmt.Errorf("start the in-process cluster: %w", err)
	}
	defer c.Stop()
	b := &bench{o: o, c: c, rest: "http://" + c.JM.RESTAddress(), http: &http.Client{Timeout: 10 * time.Second}}
	res := &Result{
		Parallelism: o.Parallelism, DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		ThroughputKeys: o.ThroughputKeys, IntervalMS: o.Interval.Milliseconds(), StateKeys: o.StateKeys,
	}
	if err := b.throughput(ctx, res); err != nil {
		return nil, err
	}
	if err := b.stateSizes(ctx, res); err != nil {
		return nil, err
	}
	if err := b.recovery(ctx, res); err != nil {
		return nil, err
	}
	res.TotalSeconds = time.Since(began).Seconds()
	if end := loadAverage(); load != nil && end != nil {
		res.LoadAverage = append(load, end...)
	}
	res.NumCPU = runtime.NumCPU()
	return res, nil
}

type bench struct {
	o    Options
	c    *minicluster.Cluster
	rest string
	http *http.Client
}

// keyedJob is the job every run measures: generator -> key_by -> keyed
// sum -> blackhole. rate paces the generator (0: as fast as it can go);
// filter, when set, is a filter between the generator and key_by.
func keyedJob(keys int64, rate int64, filter string) []byte {
	f, in := "", "gen"
	if filter != "" {
		f, in = fmt.Sprintf("  - {name: sample, type: filter, input: gen, expr: %q}\n", filter), "sample"
	}
	return fmt.Appendf(nil, `name: bench-checkpoint
operators:
  - {name: gen, type: generator, keys: %d, rate: %d}
%s  - {name: by-key, type: key_by, input: %s, key: key}
  - {name: total, type: aggregate, input: by-key, function: sum, field: value, as: total}
  - {name: sink, type: blackhole, input: total}
`, keys, rate, f, in)
}

// jobView is what the bench reads of GET /jobs/{id}.
type jobView struct {
	State      string           `json:"state"`
	Attempt    int              `json:"attempt"`
	Timestamps map[string]int64 `json:"timestamps"`
	Vertices   []struct {
		Name    string `json:"name"`
		Metrics struct {
			ReadRecords  int64 `json:"read-records"`
			WriteRecords int64 `json:"write-records"`
		} `json:"metrics"`
	} `json:"vertices"`
	FailureCause string `json:"failure-cause"`
}

// summed is the records read by the last vertex, which holds the keyed sum.
func (v *jobView) summed() int64 {
	if len(v.Vertices) == 0 {
		return 0
	}
	return v.Vertices[len(v.Vertices)-1].Metrics.ReadRecords
}

func (b *bench) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.rest+path, nil)
	if err != nil {
		return err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func (b *bench) job(ctx context.Context, id string) (*jobView, error) {
	var v jobView
	if err := b.get(ctx, "/jobs/"+id, &v); err != nil {
		return nil, err
	}
	switch v.State {
	case "FAILED", "CANCELED", "FINISHED":
		return nil, fmt.Errorf("job %s ended while measured: %s %s", id, v.State, v.FailureCause)
	}
	return &v, nil
}

func (b *bench) checkpoints(ctx context.Context, id string) (*checkpoint.Stats, error) {
	var s checkpoint.Stats
	if err := b.get(ctx, "/jobs/"+id+"/checkpoints", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// poll calls f every `every` until it returns true or an error, or until
// the deadline. Each call is a REST request or two: polling often costs
// the machine CPU the job would use, so only the measurements that need
// the precision poll fast.
func poll(ctx context.Context, timeout, every time.Duration, what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s", what, timeout)
		case <-t.C:
		}
	}
}

func (b *bench) submit(spec []byte, conf map[string]string) (string, error) {
	id, err := b.c.JM.Submit(jobmanager.Submission{Spec: spec, Parallelism: b.o.Parallelism, Config: conf})
	if err != nil {
		return "", fmt.Errorf("submit the bench job: %w", err)
	}
	return id, nil
}

// cancel cancels the job and waits until it has ended, so the next run has
// the machine to itself.
func (b *bench) cancel(ctx context.Context, id string) error {
	if err := b.c.JM.Cancel(id); err != nil {
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	wctx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if _, _, err := b.c.JM.Wait(wctx, id); err != nil {
		return fmt.Errorf("wait for job %s to end: %w", id, err)
	}
	return nil
}

// sample returns the summed records and the time they were reported: it
// waits for the counter to move, so the time is that of a heartbeat, not
// anywhere in the heartbeat interval before it.
func (b *bench) sample(ctx context.Context, id string) (int64, time.Time, error) {
	v, err := b.job(ctx, id)
	if err != nil {
		return 0, time.Time{}, err
	}
	first := v.summed()
	var n int64
	var at time.Time
	err = poll(ctx, 30*time.Second, 2*time.Millisecond, "the job's record count to move", func() (bool, error) {
		v, err := b.job(ctx, id)
		if err != nil {
			return false, err
		}
		n, at = v.summed(), time.Now()
		return n != first, nil
	})
	return n, at, err
}

// throughputRun runs the keyed job for the warm-up and o.Duration and
// returns the records/s of the measured part; with checkpoints, also the
// job's checkpoint statistics at the end.
func (b *bench) throughputRun(ctx context.Context, checkpoints bool) (float64, *checkpoint.Stats, error) {
	conf := map[string]string{"state.backend.type": "hashmap"}
	if checkpoints {
		conf["execution.checkpointing.interval"] = b.o.Interval.String()
	}
	id, err := b.submit(keyedJob(b.o.ThroughputKeys, 0, ""), conf)
	if err != nil {
		return 0, nil, err
	}
	// On an error path the job must not run on into the next run; after
	// the cancel at the end this does nothing.
	defer func() { _ = b.cancel(context.WithoutCancel(ctx), id) }()
	if err := poll(ctx, time.Minute, 20*time.Millisecond, "the bench job to run and process records", func() (bool, error) {
		v, err := b.job(ctx, id)
		return err == nil && v.State == "RUNNING" && v.summed() > 0, err
	}); err != nil {
		return 0, nil, err
	}
	// Warm-up: past the first checkpoint, with the keys in state.
	warm := min(b.o.Duration/3, 2*time.Second) + b.o.Interval
	if err := sleep(ctx, warm); err != nil {
		return 0, nil, err
	}
	n0, t0, err := b.sample(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	if err := sleep(ctx, b.o.Duration); err != nil {
		return 0, nil, err
	}
	n1, t1, err := b.sample(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	rate := float64(n1-n0) / t1.Sub(t0).Seconds()
	if !checkpoints {
		return rate, nil, b.cancel(ctx, id)
	}
	st, err := b.checkpoints(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	return rate, st, b.cancel(ctx, id)
}

func (b *bench) throughput(ctx context.Context, res *Result) error {
	for r := 0; r < b.o.Rounds; r++ {
		// Alternate which goes first, so a trend of the machine's load
		// does not favour one side.
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, ckpt := range order {
			rate, st, err := b.throughputRun(ctx, ckpt)
			if err != nil {
				return err
			}
			if !ckpt {
				res.BaselineRuns = append(res.BaselineRuns, rate)
				continue
			}
			if st.Counts.Completed == 0 {
				return fmt.Errorf("the checkpointing run completed no checkpoint in %s (interval %s): failed %d", b.o.Duration, b.o.Interval, st.Counts.Failed)
			}
			res.CheckpointingRuns = append(res.CheckpointingRuns, rate)
			res.CheckpointsCompleted += st.Counts.Completed
			res.AlignmentP99MS = max(res.AlignmentP99MS, st.Summary.AlignmentDuration.P99/1e6)
		}
	}
	var ratios []float64
	for i := range res.BaselineRuns {
		if res.BaselineRuns[i] > 0 {
			ratios = append(ratios, res.CheckpointingRuns[i]/res.BaselineRuns[i])
		}
	}
	res.RatioOfRounds = median(ratios)
	res.RecordsPerSecBaseline = median(res.BaselineRuns)
	res.RecordsPerSecCheckpointing = median(res.CheckpointingRuns)
	if res.RecordsPerSecBaseline > 0 {
		res.Ratio = res.RecordsPerSecCheckpointing / res.RecordsPerSecBaseline
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAverage is the 1-minute load average from /proc/loadavg, or nil.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return nil
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return nil
	}
	return []float64{v}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
