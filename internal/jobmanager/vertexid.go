package jobmanager

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// vertexID is the REST id of vertex v of job: 32 hex digits, as Flink's
// JobVertexID, derived from the job id and the vertex's index so that it is
// the same in every answer, across restarts of the job and of the
// JobManager's REST server, and differs between jobs.
func vertexID(job string, v int) string {
	sum := sha256.Sum256([]byte("sluice/vertex\x00" + job + "\x00" + strconv.Itoa(v)))
	return hex.EncodeToString(sum[:16])
}

// vertexIndex finds the vertex of j whose REST id is id.
func vertexIndex(j *job, id string) (int, bool) {
	for _, v := range j.plan.Vertices {
		if vertexID(j.id, v.ID) == id {
			return v.ID, true
		}
	}
	return 0, false
}

// slotSharingGroupID is the id of the one slot sharing group of a job's
// vertices, in Flink's 32-hex form.
func slotSharingGroupID(job string) string {
	sum := sha256.Sum256([]byte("sluice/slot-sharing-group\x00" + job))
	return hex.EncodeToString(sum[:16])
}
