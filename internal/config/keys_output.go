package config

// What the JobManager keeps of each job's printed output (print sinks without a path), for
// sluice run to show as the job runs (GET /jobs/{id}/output). Flink has no such keys: its
// printed records stay in each TaskManager's .out file.
func init() {
	for _, k := range []Key{
		{Name: "jobmanager.job-output.max-lines", Type: Int, Default: "10000", Min: new(int64(0)),
			Doc: "Most printed lines the JobManager keeps per job; older ones are dropped and counted. 0 keeps none."},
		{Name: "jobmanager.job-output.max-bytes", Type: Bytes, Default: "4mb", Min: new(int64(1)),
			Doc: "Most bytes of printed lines the JobManager keeps per job; older lines are dropped and counted."},
		{Name: "jobmanager.job-output.max-total-bytes", Type: Bytes, Default: "64mb", Min: new(int64(1)),
			Doc: "Most bytes of printed lines the JobManager keeps over all jobs: beyond it, the output of ended jobs is dropped, oldest job first."},
	} {
		Register(k)
	}
}
