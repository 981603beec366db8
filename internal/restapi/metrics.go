package restapi

// Metric is one entry of Flink's metric endpoints (GET /jobs/{id}/metrics,
// /jobs/{id}/vertices/{vid}/metrics, /taskmanagers/{id}/metrics,
// /jobmanager/metrics). Without ?get= they list the available metrics (ids
// only); with ?get=a,b they answer those metrics' values. The body is a JSON
// array of them.
type Metric struct {
	ID    string `json:"id"`
	Value string `json:"value,omitempty"`
}

// AggregatedMetric is one entry of GET /jobs/{id}/vertices/{vid}/subtasks/metrics:
// a metric aggregated over subtasks, with the aggregations ?agg= asks for
// (min, max, avg, sum, skew; all without ?agg=).
type AggregatedMetric struct {
	ID   string   `json:"id"`
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	Avg  *float64 `json:"avg,omitempty"`
	Sum  *float64 `json:"sum,omitempty"`
	Skew *float64 `json:"skew,omitempty"`
}
