package config

// Resource limits on what a submitter controls: the size and shape of a job spec and the cost
// of its expressions, and how long a TaskManager waits for its tasks when it stops. Kept in
// their own block so they stay together. Flink has none of these keys: a Flink job is code the
// cluster trusts, a sluice job is data from any submitter.
func init() {
	for _, k := range []Key{
		{Name: "rest.server.max-spec-size", Type: Bytes, Default: "1mb", Min: new(int64(1)),
			Doc: "Largest job spec (YAML) a submission may carry; larger ones are refused with 413 before they are parsed. Attached files are bounded by rest.max-upload-size."},
		{Name: "pipeline.expression.max-cost", Type: Int, Default: "10000000", Min: new(int64(1)),
			Doc: "Largest cost of one evaluation of a CEL expression (about one unit per operation): a job whose expression is estimated to cost more on a record is refused at submission, and an evaluation that exceeds it fails its task."},
		{Name: "taskmanager.shutdown.grace-period", Type: Duration, Default: "30 s", Min: new(int64(0)),
			Doc: "How long a stopping TaskManager waits for its cancelled tasks to end before it exits anyway, logging the tasks still running."},
	} {
		Register(k)
	}
}
