// Package nexmarkbench measures the Nexmark queries on an in-process cluster
// (internal/minicluster) against Flink's published throughput per core: a
// query spec (examples/nexmark/qN.yaml) runs over a bounded nexmark source
// into a blackhole sink, with checkpoints on, and the figure is the events
// over the CPU time the whole process spent (user + system, from the OS), so
// it does not depend on how many cores the machine lent the run.
// `sluice bench nexmark` prints its Results.
package nexmarkbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/minicluster"
)

// FlinkPerCore is Flink 1.13's throughput per core published by the Nexmark
// project (8 workers, checkpoints on, RocksDB), in events a second per core.
// Queries without a published figure (q6, q9, q10) are absent.
var FlinkPerCore = map[string]float64{
	"q0": 155_000, "q1": 158_000, "q2": 175_000, "q3": 152_000, "q4": 34_000,
	"q5": 22_000, "q7": 12_000, "q8": 146_000, "q11": 40_000, "q12": 76_000,
}

// Queries are the queries `sluice bench nexmark --all` runs, in order: those
// with a spec in the examples (q6 is skipped, as Flink's suite does).
var Queries = []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12"}

// Options configure a run.
type Options struct {
	// Query names the query (q0...q12); its spec is Dir/Query.yaml.
	Query string
	// Dir holds the query specs; default examples/nexmark.
	Dir string
	// Events is the number of events the nexmark source generates; 0:
	// the query's DefaultEvents.
	Events int64
	// Parallelism of the job (every operator).
	Parallelism int
	// CheckpointInterval is execution.checkpointing.interval; 0 turns
	// checkpoints off.
	CheckpointInterval time.Duration
	// Timeout bounds one query's run.
	Timeout time.Duration
}

// DefaultEvents are the events of a query's run when Options.Events is 0:
// on two cores, each query runs about 10-20 s, long enough for a stable
// figure and a checkpoint or two at the default interval. The queries keep
// differ by 10x in cost per event: the windowed ones (q4, q5, q7) take
// fewer events.
var DefaultEvents = map[string]int64{
	"q0": 80_000_000, "q1": 60_000_000, "q2": 80_000_000, "q3": 30_000_000, "q4": 4_000_000,
	"q5": 8_000_000, "q7": 5_000_000, "q8": 30_000_000, "q11": 20_000_000, "q12": 40_000_000,
}

// defaultEvents is the events of a query without an entry in DefaultEvents.
const defaultEvents = 10_000_000

// DefaultOptions are the defaults of `sluice bench nexmark`.
func DefaultOptions() Options {
	return Options{Dir: filepath.Join("examples", "nexmark"), Parallelism: 2,
		CheckpointInterval: 10 * time.Second, Timeout: 10 * time.Minute}
}

// Result is one query's measurement, the JSON object `sluice bench nexmark`
// prints.
type Result struct {
	Query  string `json:"query"`
	Events int64  `json:"events"`
	// Seconds is from the job's submission to its end (every event
	// through the query, the job FINISHED).
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// CPUSeconds is the user and system time of this whole process over
	// the run, from getrusage(RUSAGE_SELF): every TaskManager, the
	// JobManager and the Go runtime.
	CPUSeconds       float64 `json:"cpu_seconds"`
	EventsPerCoreSec float64 `json:"events_per_core_sec"`
	// FlinkPerCore is Flink 1.13's published figure for the query (absent
	// when there is none), Ratio events_per_core_sec over it.
	FlinkPerCore         float64 `json:"flink_per_core,omitempty"`
	Ratio                float64 `json:"ratio_to_flink,omitempty"`
	Parallelism          int     `json:"parallelism"`
	CheckpointIntervalMS int64   `json:"checkpoint_interval_ms"`
	CheckpointsCompleted int64   `json:"checkpoints_completed"`
	NumCPU               int     `json:"num_cpu"`
}

// Cluster is an in-process cluster that runs the queries one after another.
type Cluster struct {
	c *minicluster.Cluster
}

// StartCluster starts a JobManager and two TaskManagers with parallelism
// slots each, with the default configuration: tasks exchange records over
// loopback sockets as on a real cluster.
func StartCluster(ctx context.Context, parallelism int, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := minicluster.Start(ctx, minicluster.Options{
		Config: config.New(), Logger: log, TaskManagers: 2, Slots: max(parallelism, 1), Stdout: io.Discard,
		DefaultCheckpointsDir: true,
	})
	if err != nil {
		return nil, fmt.Errorf("start the in-process cluster: %w", err)
	}
	return &Cluster{c: c}, nil
}

// checkpoints reads the job's checkpoint statistics from the REST API, as a
// user would.
func (c *Cluster) checkpoints(ctx context.Context, id string) (*checkpoint.Stats, error) {
	path := "/jobs/" + id + "/checkpoints"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.c.JM.RESTAddress()+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	var s checkpoint.Stats
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return &s, nil
}

// Stop stops the cluster.
func (c *Cluster) Stop() { c.c.Stop() }

// Run measures one query on the cluster.
func (c *Cluster) Run(ctx context.Context, o Options) (*Result, error) {
	d := DefaultOptions()
	if o.Dir == "" {
		o.Dir = d.Dir
	}
	if o.Events <= 0 {
		o.Events = defaultEvents
		if n, ok := DefaultEvents[o.Query]; ok {
			o.Events = n
		}
	}
	if o.Parallelism <= 0 {
		o.Parallelism = d.Parallelism
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	path := filepath.Join(o.Dir, o.Query+".yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("query %s: read its spec: %w (--query names a spec qN.yaml in --dir)", o.Query, err)
	}
	spec, err := benchSpec(raw, o.Events)
	if err != nil {
		return nil, fmt.Errorf("query %s: %s: %w", o.Query, path, err)
	}
	// A failing query fails the run rather than restarting and
	// measuring the restarts.
	conf := map[string]string{"restart-strategy.type": "none"}
	if o.CheckpointInterval > 0 {
		conf["execution.checkpointing.interval"] = o.CheckpointInterval.String()
	}
	// A clean heap for every query, so one query's garbage is not
	// collected on the next one's time.
	runtime.GC()
	cpu0, err := cpuTime()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	id, err := c.c.JM.Submit(jobmanager.Submission{Spec: spec, Parallelism: o.Parallelism, Config: conf})
	if err != nil {
		return nil, fmt.Errorf("query %s: submit: %w", o.Query, err)
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	state, cause, err := c.c.JM.Wait(wctx, id)
	if err != nil {
		_ = c.c.JM.Cancel(id)
		cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer stop()
		_, _, _ = c.c.JM.Wait(cctx, id)
		return nil, fmt.Errorf("query %s: not finished within %s (--timeout): %w", o.Query, o.Timeout, err)
	}
	elapsed := time.Since(began)
	cpu1, err := cpuTime()
	if err != nil {
		return nil, err
	}
	if state != jobmanager.Finished {
		return nil, fmt.Errorf("query %s: job %s %s: %s", o.Query, id, state, cause)
	}
	res := &Result{
		Query: o.Query, Events: o.Events, Seconds: elapsed.Seconds(), CPUSeconds: (cpu1 - cpu0).Seconds(),
		Parallelism: o.Parallelism, CheckpointIntervalMS: o.CheckpointInterval.Milliseconds(), NumCPU: runtime.NumCPU(),
	}
	if o.CheckpointInterval > 0 {
		st, err := c.checkpoints(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", o.Query, err)
		}
		res.CheckpointsCompleted = st.Counts.Completed
	}
	res.EventsPerSec = float64(o.Events) / res.Seconds
	if res.CPUSeconds > 0 {
		res.EventsPerCoreSec = float64(o.Events) / res.CPUSeconds
	}
	if f, ok := FlinkPerCore[o.Query]; ok {
		res.FlinkPerCore = f
		res.Ratio = res.EventsPerCoreSec / f
	}
	return res, nil
}
