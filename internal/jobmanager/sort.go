package jobmanager

import (
	"sort"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// sortSummaries orders jobs newest first, as Flink's dashboard lists them.
func sortSummaries(s []restapi.JobSummary) {
	sort.Slice(s, func(a, b int) bool {
		if s[a].StartTime != s[b].StartTime {
			return s[a].StartTime > s[b].StartTime
		}
		return s[a].ID < s[b].ID
	})
}
